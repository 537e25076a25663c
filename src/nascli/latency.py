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

import contextlib
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
    bf16: bool = False  # time under bf16 autocast (device.amp), as the network would run


def latency_settings(cfg, bf16: bool = False) -> LatencySettings:
    """The settings the latency proxy reads from a `latency:` config node (other keys are for retrain);
    `bf16`: the device config's bf16 autocast (device.amp), also read from a `bf16` key."""
    cfg = cfg or {}
    return LatencySettings(**{k: int(cfg[k]) for k in ("batch", "repeats", "warmup") if k in cfg},
                           bf16=bool(bf16 or cfg.get("bf16", False)))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(run, device: torch.device, settings: LatencySettings) -> float:
    """Median wall time in milliseconds of `run()`, after `settings.warmup` untimed calls."""
    return interleaved_ms([run], device, settings)[0]


def interleaved_ms(runs: list, device: torch.device, settings: LatencySettings) -> list[float]:
    """Median milliseconds of each of `runs`, timed in rounds (each round calls every one once).

    On a shared machine the speed drifts over seconds (measured here: the same 20 networks timed one after
    another twice ordered themselves with Spearman 0.34; in rounds, 0.91), so timings that will be compared
    with each other are taken in rounds: a slow spell then slows every entry alike."""
    times: list[list[float]] = [[] for _ in runs]
    precision = torch.autocast(device.type, dtype=torch.bfloat16) if settings.bf16 else contextlib.nullcontext()
    with precision:
        for run in runs:
            for _ in range(settings.warmup):
                run()
        for _ in range(settings.repeats):
            for run, out in zip(runs, times, strict=True):
                _sync(device)
                start = time.perf_counter()
                run()
                _sync(device)
                out.append(time.perf_counter() - start)
    return [1000.0 * statistics.median(t) for t in times]


def timing_input(model: nn.Module, batch: int, channels: int, height: int, width: int,
                 layout: torch.memory_format | None = None) -> torch.Tensor:
    """A fixed input for `model`: its device, dtype and memory format (no conversion inside the timing)."""
    weight = next(model.parameters())
    x = torch.randn(batch, channels, height, width, generator=torch.Generator().manual_seed(0))
    return x.to(weight.device, weight.dtype).contiguous(memory_format=layout or memory_format_of(model))


@torch.no_grad()
def measure_latency_ms(model: nn.Module, shape: DataShape, settings: LatencySettings = LatencySettings()) -> float:
    """Median wall time in milliseconds of one eval-mode forward of `settings.batch` images."""
    x = timing_input(model, settings.batch, shape.channels, shape.height, shape.width)
    was_training = model.training
    model.eval()
    try:
        return median_ms(lambda: model(x), x.device, settings)
    finally:
        model.train(was_training)


def measure_trained_latency(model: nn.Module, shape: DataShape, cfg, device: str, bf16: bool = False) -> dict:
    """latency.json of a retrain: latency at `cfg.batch` and throughput at `cfg.throughput_batch`."""
    single = latency_settings(cfg, bf16)
    bulk = replace(single, batch=int(cfg.throughput_batch))
    latency_ms = measure_latency_ms(model, shape, single)
    bulk_ms = measure_latency_ms(model, shape, bulk)
    return {"latency_ms": round(latency_ms, 4), "batch": single.batch,
            "throughput_img_s": round(bulk.batch / (bulk_ms / 1000.0), 2), "throughput_batch": bulk.batch,
            "repeats": single.repeats, "warmup": single.warmup, "statistic": "median", "mode": "eval, no autograd",
            "precision": "bf16 autocast" if single.bf16 else "float32",
            "device": device, "threads": torch.get_num_threads(), "torch": torch.__version__}
