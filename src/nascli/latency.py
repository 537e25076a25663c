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
import hashlib
import json
import platform
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from nascli.atomic import write_text
from nascli.device import memory_format_of
from nascli.spaces.base import DataShape


def device_name(device: torch.device) -> str:
    """The processor the timings belong to (the GPU's name, or the CPU model)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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


# Runs timed in one set of rounds at most. oneDNN keeps 1,024 compiled primitives per process
# (ONEDNN_PRIMITIVE_CACHE_CAPACITY); rounds over more distinct convolutions than that recompile every one
# on every call: measured here on 200 membank networks' table (1,271 conv units in one set of rounds), every entry
# came out 1.49x slow (median), and 1.12x with the cache raised to 8,192. Chunks of 128 single ops stay inside
# it; whole networks hold tens of convolutions each and need smaller chunks (bench/latency.py passes 16).
ROUND_SIZE = 128


def interleaved_ms(runs: list, device: torch.device, settings: LatencySettings,
                   round_size: int = ROUND_SIZE) -> list[float]:
    """Median milliseconds of each of `runs`, timed in rounds (each round calls every one once).

    On a shared machine the speed drifts over seconds (measured here: the same 20 networks timed one after
    another twice ordered themselves with Spearman 0.34; in rounds, 0.91), so timings that will be compared
    with each other are taken in rounds: a slow spell then slows every entry alike. More than ROUND_SIZE runs
    are timed in consecutive chunks of `round_size` (see ROUND_SIZE)."""
    if len(runs) > round_size:
        return [ms for start in range(0, len(runs), round_size)
                for ms in interleaved_ms(runs[start:start + round_size], device, settings, round_size)]
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


MEASURED_DIR = Path(".cache") / "latency" / "measured"  # under the run root


def key_digest(key: dict, length: int) -> str:
    """A short file-name tag of a cache key (a measurement's setting)."""
    return hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:length]


def read_keyed(path: Path, field: str, key: dict) -> dict | None:
    """The cached JSON document at `path` if its `field` is `key`; None when missing, damaged or of another key."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get(field) != json.loads(json.dumps(key, default=str)):
        return None
    return saved


def cached_trained_latency(model: nn.Module, shape: DataShape, cfg, device: str, bf16: bool, run_root: Path,
                           network: dict) -> dict:
    """`measure_trained_latency`, measured once per network and setting under `run_root`.

    Eval-mode latency depends on the network's structure, input shape and the device setting, not on its trained
    weights, so a retrain of the same network under the same root (another seed, or the same run resumed after a
    crash) reads the first measurement: result.json stays the same bytes resumed or not (issue 15) while still
    carrying the measured latency. `network` identifies the structure (arch_id, space, network size); the key
    adds the device's processor, torch version, threads, settings, dtype and memory format. A fresh root (or
    deleting RUN_ROOT/.cache/latency) measures again."""
    weight = next(model.parameters())
    key = {"network": network, "input": [shape.channels, shape.height, shape.width],
           "device": device, "device_name": device_name(weight.device), "torch": torch.__version__,
           "threads": torch.get_num_threads(), "batch": int(cfg.batch), "throughput_batch": int(cfg.throughput_batch),
           "repeats": int(cfg.repeats), "warmup": int(cfg.warmup), "bf16": bool(bf16),
           "memory_format": "channels_last" if memory_format_of(model) == torch.channels_last else "contiguous"}
    path = Path(run_root) / MEASURED_DIR / f"{network.get('arch_id', 'net')}-{key_digest(key, 16)}.json"
    saved = read_keyed(path, "key", key)
    if saved is not None and isinstance(saved.get("timing"), dict):
        return {**saved["timing"], "measured": "earlier (cached under the run root)", "cache": str(path)}
    # Not measured yet under this root, or a damaged file: measured again and rewritten.
    timing = measure_trained_latency(model, shape, cfg, device, bf16)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps({"key": key, "timing": timing}, indent=1, default=str))
    return {**timing, "measured": "now", "cache": str(path)}
