"""Data-parallel supernet training under torchrun: one process per rank, gloo on the CPU, NCCL on CUDA.

Every rank builds the same supernet and α from the same seed, reads the same global batch in the same order
(one data generator, seeded alike) and the same Gumbel noise, trains on its slice of the batch, and averages
gradients with an all-reduce before each optimiser step. So every rank holds the same weights and α after each
step, and every decision (the sampled architecture, the derived child) comes out the same on every rank; only
rank 0 writes the run directory. The global batch is `batch_size`, split across ranks, so a 2-rank run follows
the schedule of a 1-rank run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch
import torch.distributed as dist


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def start(device: torch.device) -> str | None:
    """Join the process group torchrun set up (None when not launched by torchrun)."""
    if world_size() <= 1:
        return None
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return backend


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def shard(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's slice of a global batch (every rank read the same one)."""
    n = world_size()
    if n <= 1:
        return x, y
    return x[rank()::n], y[rank()::n]


def average_gradients(params: Iterable[torch.Tensor]) -> None:
    """Mean of every rank's gradient (what DDP's all-reduce computes), in place."""
    n = world_size()
    if n <= 1:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= n


def all_agree(value) -> bool:
    """True when every rank holds the same value (e.g. the derived child's arch_id)."""
    if world_size() <= 1:
        return True
    values = [None] * world_size()
    dist.all_gather_object(values, value)
    return all(v == values[0] for v in values)


def broadcast(value):
    """Rank 0's value on every rank (a resumed run's checkpoint payload)."""
    if world_size() <= 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
