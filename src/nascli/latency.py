"""Measured inference latency: the cost that matters is the one timed on the device that runs the model.

FLOPs and parameter counts order latency poorly (MnasNet, ProxylessNAS and FBNet all show it), so this
times the network itself: eval mode, no autograd, a fixed input of `batch` images in the network's own
memory format and dtype, `warmup` untimed runs (allocator, oneDNN primitive caches, cuDNN autotuning),
then the median of `repeats` timed runs, with CUDA synchronised around each one. The median, not the
mean, because a shared machine adds rare long outliers.

Timings vary between runs and machines: a latency column is a measurement, not a deterministic score.
Measure with one worker (`executor.workers=1`): two workers timing at once slow each other down.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, replace

import torch
from torch import nn

from nascli.device import memory_format_of
from nascli.spaces.base import DataShape


@dataclass(frozen=True)
class LatencySettings:
    batch: int = 1  # images per timed forward (1: the latency a single request sees)
    repeats: int = 20  # timed runs; the median is reported
    warmup: int = 3  # untimed runs first


def latency_settings(cfg) -> LatencySettings:
    """The settings the latency proxy reads from a `latency:` config node (other keys are for retrain)."""
    cfg = cfg or {}
    return LatencySettings(**{k: int(cfg[k]) for k in ("batch", "repeats", "warmup") if k in cfg})


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def measure_latency_ms(model: nn.Module, shape: DataShape, settings: LatencySettings = LatencySettings()) -> float:
    """Median wall time in milliseconds of one eval-mode forward of `settings.batch` images."""
    weight = next(model.parameters())
    layout = memory_format_of(model)
    x = torch.randn(settings.batch, shape.channels, shape.height, shape.width, generator=torch.Generator().manual_seed(0))
    x = x.to(weight.device, weight.dtype).contiguous(memory_format=layout)
    was_training = model.training
    model.eval()
    try:
        for _ in range(settings.warmup):
            model(x)
        times = []
        for _ in range(settings.repeats):
            _sync(weight.device)
            start = time.perf_counter()
            model(x)
            _sync(weight.device)
            times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    return 1000.0 * statistics.median(times)


def measure_trained_latency(model: nn.Module, shape: DataShape, cfg, device: str) -> dict:
    """latency.json of a retrain: latency at `cfg.batch` and throughput at `cfg.throughput_batch`."""
    single = latency_settings(cfg)
    bulk = replace(single, batch=int(cfg.throughput_batch))
    latency_ms = measure_latency_ms(model, shape, single)
    bulk_ms = measure_latency_ms(model, shape, bulk)
    return {"latency_ms": round(latency_ms, 4), "batch": single.batch,
            "throughput_img_s": round(bulk.batch / (bulk_ms / 1000.0), 2), "throughput_batch": bulk.batch,
            "repeats": single.repeats, "warmup": single.warmup, "statistic": "median", "mode": "eval, no autograd",
            "device": device, "threads": torch.get_num_threads(), "torch": torch.__version__}
