"""The settings that change a retrain's result, and a hash of them: what makes two retrains of one architecture
comparable, and what `nas correlate` matches retrains on before it averages their accuracies.

The seed is left out (seeds are what gets averaged); so are paths, checkpoint cadence and latency settings,
which change no accuracy. The intra-op thread count is in: CPU kernels round differently with another count,
so a lone `nas retrain` (the machine's cores) and a batch retrain (one thread each) of the same architecture and
seed give different numbers.
"""

from __future__ import annotations

import hashlib
import json

from omegaconf import DictConfig, OmegaConf

from nascli.precision import amp_mode, layout_mode

# Dataset keys that change which images are read and how (not where they are stored).
DATASET_KEYS = ("name", "val_fraction", "test_fraction", "split_seed", "subset", "test_subset", "test_subset_seed",
                "resize", "crop_padding", "flip", "mean", "std")
BUDGET_KEYS = ("epochs", "batch_size", "max_batches")


def result_settings(cfg: DictConfig, *, threads: int | None, device: str | None, precision: dict | None = None) -> dict:
    """The retrain settings a result depends on, as plain values (`device`: the device type it ran on;
    `precision`: what ran, as the manifest records it; None: read from the config, as runs before `auto` did)."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    dataset, space, budget = plain.get("dataset") or {}, plain.get("space") or {}, plain.get("budget") or {}
    device_cfg = plain.get("device") or {}
    return {
        "dataset": {k: dataset.get(k) for k in DATASET_KEYS},
        "space": {"name": space.get("name"), "retrain": space.get("retrain")},
        "budget": {k: budget.get(k) for k in BUDGET_KEYS},
        "train": plain.get("train"),
        "device": {"type": device, **_precision(precision, device_cfg), "threads": threads},
    }


def _precision(precision: dict | None, device_cfg: dict) -> dict:
    """What ran, as the hash has always spelt it: float32 `False` and bf16 "bf16", channels_last a boolean, so
    retrains from before `auto` keep their hashes. Without a recorded precision (runs before `auto`), the config
    said it (no `auto` there)."""
    if precision is not None:
        amp, channels_last = precision["amp"], bool(precision["channels_last"])
    else:
        amp, channels_last = amp_mode(device_cfg.get("amp")), layout_mode(device_cfg.get("channels_last")) == "true"
    return {"amp": "bf16" if amp == "bf16" else False, "channels_last": channels_last}


def settings_hash(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _flat(node, prefix: str = "") -> dict[str, object]:
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, object] = {}
    for k, v in node.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def differing(settings: list[dict]) -> dict[str, list]:
    """Dotted key -> the distinct values it takes, for every key on which the settings disagree."""
    flat = [_flat(s) for s in settings]
    keys = sorted({k for f in flat for k in f})
    out = {}
    for key in keys:
        values = []
        for f in flat:
            v = f.get(key)
            if v not in values:
                values.append(v)
        if len(values) > 1:
            out[key] = values
    return out


def device_type(described: str | None) -> str | None:
    """The device type from a manifest's device description ("cpu", "cuda:0 (NVIDIA H100) [bf16]" -> cuda:0)."""
    if not described:
        return None
    return str(described).split(" ")[0]
