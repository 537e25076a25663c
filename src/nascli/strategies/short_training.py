"""Short training of one candidate: how random search and PNAS's `train` evaluator score an architecture.

The score is the final-epoch val accuracy (not the best epoch: picking the best epoch on val would bias
the score upward), and each architecture trains from its own seed, so its score does not depend on what
was trained before it or on which worker trained it.
"""

from __future__ import annotations

import time
import zlib

import torch

from nascli.arch import Arch
from nascli.strategies.base import Candidate, SearchContext
from nascli.train import Diverged, fit


def arch_seed(seed: int, arch: Arch) -> int:
    """A per-architecture seed: an arch's score does not depend on what was trained before it."""
    return zlib.crc32(f"{seed}:{arch.arch_id}".encode())


def train_candidate(arch: Arch, ctx: SearchContext, epochs: int, net=None) -> Candidate:
    """Train `arch` at the space's search size (or `net`) for `epochs`; score = final val accuracy."""
    seed = arch_seed(ctx.seed, arch)
    torch.manual_seed(seed)
    size = net if net is not None else ctx.space.cfg.search
    model = ctx.runtime.prepare(ctx.space.build(arch, ctx.splits.shape, size))
    started = time.perf_counter()
    try:
        history = fit(model, ctx.splits, ctx.cfg.train, epochs=epochs, batch_size=int(ctx.cfg.budget.batch_size),
                      runtime=ctx.runtime, generator=torch.Generator().manual_seed(seed),
                      max_batches=ctx.cfg.budget.max_batches, dataset_cfg=ctx.cfg.dataset)
    except Diverged as e:
        ctx.log(event="candidate_failed", arch_id=arch.arch_id, error=str(e))
        return Candidate(arch, float("nan"), "failed", {"error": str(e)})
    last = history[-1]
    # Timings go to metrics.jsonl, not archs.csv: results files must be identical across reruns.
    ctx.log(event="candidate_trained", arch_id=arch.arch_id, train_seconds=round(time.perf_counter() - started, 3))
    return Candidate(arch, last["val_acc"], "ok", {
        "val_loss": last["val_loss"], "train_acc": last["train_acc"], "epochs": epochs,
    })
