"""Which numeric precision (bf16 autocast or float32) and memory layout (channels_last or NCHW) a training path
runs in, when `device.amp` / `device.channels_last` say `auto`.

The choice is a fixed rule, never a timing taken at run time: the precision changes the result, so the same config
on the same machine must always pick the same one. The rule is a table read off `bench/precision_steps.json` (one
training step of every network nascli trains, float32 NCHW against bf16 and channels_last, interleaved in one
process, 2 threads, AMD EPYC with avx512_bf16; the README's "Precision and memory layout" quotes it), keyed by what
is trained (a fixed network, SNAS's supernet, SMASH's HyperNet), the space (its op types: DARTS and PNAS cells are
depthwise-separable convs, NB201 cells dense 3x3 convs, SMASH's main network 1x1 convs) and the input size (below
or from BF16_MIN_SIDE pixels). Each entry is the fastest of the four variants measured for it, except where a
whole run (`bench/precision_paths.json`) was not faster in it: then float32 NCHW.

- bf16 pays where the hardware computes it natively and the maps are large (DARTS and NB201 networks at 32x32,
  SNAS's NB201 supernet there), and for the retrained networks of the membank space (1x1 convs) at any size; not
  for PNAS (its 5x5 and 7x7 separable convs: 1.05x at 32x32, 0.69x at 8x8), nor for DARTS or NB201 networks at
  8x8, where float32 channels_last is as fast or faster.
- channels_last pays for every fixed network measured (with bf16 or not), never for SNAS's supernet (whole
  searches on DARTS at 8x8 trained 6% slower in it, though its step measured 1.04-1.08x faster).
- SMASH's HyperNet training keeps float32 NCHW: its step bench says otherwise, a whole run does not (see RULE).
- A pair the bench has not measured (a space added by a plugin) keeps float32 NCHW, as before `auto` existed.
- Zero-cost proxies stay float32: their scores are sums over gradients and activations, and their equality with
  earlier runs is tested (under `auto` they run NCHW; `conf/rank.yaml` sets channels_last, as before).

On CUDA the same table applies with "native" meaning `torch.cuda.is_bf16_supported()`; it was not measured there.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch

from nascli.errors import UserError

AMP_MODES = ("auto", "off", "bf16")
LAYOUT_MODES = ("auto", "true", "false")

# What `nascli` trains, by the shape of its step.
NETWORK = "network"  # a fixed network: retrain, candidate training (random, pnas, evolution), evaluation
SUPERNET = "supernet"  # SNAS: every op of every edge, mixed by Gumbel-softmax samples
HYPERNET = "hypernet"  # SMASH: a HyperNet generating weights of the main network (or the SPOS control)
ZERO_COST = "zero_cost"  # zero-cost proxy scoring (`nas rank`): no training step
WORKLOADS = (NETWORK, SUPERNET, HYPERNET, ZERO_COST)

BF16_MIN_SIDE = 16  # pixels: the measured sizes are 8 (digits) and 32 (CIFAR); 16 still has 8x8 maps after a stride

# (workload, space) -> {input size: (bf16 where native, channels_last)}, from bench/precision_steps.json. The
# speed-up over float32 NCHW of the chosen variant is noted (2 threads); "small" is below BF16_MIN_SIDE.
RULE: dict[tuple[str, str], dict[str, tuple[bool, bool]]] = {
    (NETWORK, "darts"): {"small": (False, True),  # 1.31-1.44x (bf16 0.90-1.02x, bf16 channels_last 1.12-1.23x)
                         "large": (True, True)},  # 1.42-1.61x (float32 channels_last 1.28-1.35x)
    (NETWORK, "nb201"): {"small": (False, True),  # 1.16-1.21x (bf16 channels_last 1.07-1.20x)
                         "large": (True, True)},  # 1.28-2.00x
    (NETWORK, "pnas"): {"small": (False, True),  # 1.12x (bf16 0.69x)
                        "large": (False, True)},  # 1.64x (bf16 channels_last 1.31x)
    (NETWORK, "membank"): {"small": (True, True),  # 1.07-1.08x (float32 channels_last 0.99x)
                           "large": (True, True)},  # 1.42x
    # The step measured 1.04-1.08x in channels_last at 8x8, but whole SNAS searches on digits trained slower in it
    # (65 -> 69 s and 77 -> 82 s of supernet training, seeds 0 and 1: bench/precision_paths.json).
    (SUPERNET, "darts"): {"small": (False, False),
                          "large": (False, False)},  # nothing pays: 0.92-1.00x
    (SUPERNET, "nb201"): {"small": (False, False),  # nothing pays: 0.89-0.94x
                          "large": (True, False)},  # 1.13x (channels_last 0.79-0.90x)
    # SMASH's step measures 1.72x faster in bf16 channels_last (1.33x at 32x32), but a whole HyperNet training on
    # digits does not get faster at all (181 s float32 NCHW, 186 s bf16 channels_last: bench/precision_paths.json;
    # 10-epoch runs 28.9 s against 29.5 s, channels_last alone 28.5 s, bf16 alone 27.1 s). Until the step bench
    # explains the whole run, SMASH keeps float32 NCHW.
    (HYPERNET, "membank"): {"small": (False, False),
                            "large": (False, False)},
    # SMASH on nb201 (C=8 N=1): at 8x8 nothing pays (channels_last 1.05x is inside the noise, bf16 0.82-0.93x); at
    # 32x32 the step measures 1.10-1.22x channels_last and 1.08-1.18x bf16 (two runs), but, as for membank, no whole HyperNet training
    # has been timed in them yet: float32 NCHW until one is.
    (HYPERNET, "nb201"): {"small": (False, False),
                          "large": (False, False)},
}
UNMEASURED = (False, False)  # today's float32 NCHW


@dataclass(frozen=True)
class Precision:
    """What a path runs in, the settings it came from and why, as the manifest records it."""

    bf16: bool
    channels_last: bool
    workload: str
    amp_setting: str
    channels_last_setting: str
    reason: str

    def record(self) -> dict:
        return {"amp": "bf16" if self.bf16 else "off", "channels_last": self.channels_last,
                "workload": self.workload, "settings": {"amp": self.amp_setting,
                                                        "channels_last": self.channels_last_setting},
                "reason": self.reason}


def amp_mode(value) -> str:
    """`device.amp` as one of AMP_MODES. Configs written before the modes said `amp: true/false`, which
    OmegaConf turns into the strings "True"/"False" in the str-typed field."""
    mode = str(value).strip().lower() if value is not None else "off"
    mode = {"false": "off", "true": "bf16", "none": "off"}.get(mode, mode)
    if mode == "fp16":
        # fp16 needs a gradient scaler in every training loop, which nascli does not have.
        raise UserError("device.amp=fp16 is not supported (nascli's training loops have no loss scaling); "
                        "use device.amp=auto, device.amp=bf16 or device.amp=off")
    if mode not in AMP_MODES:
        raise UserError(f"device.amp={value} is not a precision nascli knows; use auto, bf16 or off")
    return mode


def layout_mode(value) -> str:
    """`device.channels_last` as one of LAYOUT_MODES (booleans, as configs before `auto` wrote them)."""
    mode = str(value).strip().lower() if value is not None else "false"
    mode = {"on": "true", "off": "false", "none": "false"}.get(mode, mode)
    if mode not in LAYOUT_MODES:
        raise UserError(f"device.channels_last={value} is not a layout nascli knows; use auto, true or false")
    return mode


def check_settings(device_cfg) -> None:
    """Refuse unknown `device.amp` / `device.channels_last` values before any data is read."""
    amp_mode(device_cfg.amp)
    layout_mode(device_cfg.channels_last)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (avx512_bf16 or amx_bf16), by oneDNN's own check."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(check()) if check is not None else False


def native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_bf16()


_warned: set[str] = set()


def _warn_emulated_bf16() -> None:
    """Once per process: a search resolves its precision again for every candidate it trains."""
    if "bf16" in _warned:
        return
    _warned.add("bf16")
    # Emulated bf16 is correct, only slow, so this is a warning, not an error.
    print("nas: warning: device.amp=bf16 on a CPU without native bf16 (no avx512_bf16 or amx_bf16) runs "
          "emulated and slower than float32; device.amp=off is faster here", file=sys.stderr)


def rule_for(workload: str, space: str, side: int | None) -> tuple[bool, bool]:
    """(bf16 where native, channels_last) of the rule; None as the side counts as small inputs."""
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}; one of {WORKLOADS}")
    size = "large" if side is not None and side >= BF16_MIN_SIDE else "small"
    return RULE.get((workload, space), {}).get(size, UNMEASURED)


def choose(amp, channels_last, device: torch.device, workload: str, space: str, side: int | None) -> Precision:
    """The precision and layout of `workload` in `space` on `device`, for inputs whose shorter side is `side`
    pixels (None: unknown, treated as small)."""
    amp_set, layout_set = amp_mode(amp), layout_mode(channels_last)
    rule_bf16, rule_layout = rule_for(workload, space, side)
    measured = (workload, space) in RULE
    what = f"a {workload} of {space} at {side} px" if side else f"a {workload} of {space}"
    reasons = []
    if workload == ZERO_COST:
        # Proxy scores stay float32 whatever the setting (their equality with earlier runs is tested).
        bf16 = False
        reasons.append("float32: zero-cost proxies score in float32")
    elif amp_set == "auto":
        native = native_bf16(device)
        bf16 = rule_bf16 and native
        if not measured:
            reasons.append(f"float32: {what} is not in the measured rule")
        elif not rule_bf16:
            reasons.append(f"float32: bf16 measured no faster for {what}")
        elif not native:
            reasons.append(f"float32: {device.type} has no native bf16")
        else:
            reasons.append(f"bf16: native here and measured faster for {what}")
    else:
        bf16 = amp_set == "bf16"
        reasons.append(f"{'bf16' if bf16 else 'float32'}: device.amp={amp_set}")
        if bf16 and device.type == "cpu" and not cpu_has_bf16():
            _warn_emulated_bf16()
    if layout_set == "auto" and workload == ZERO_COST:
        layout = False
        reasons.append("NCHW: zero-cost proxies score as they always have")
    elif layout_set == "auto":
        layout = rule_layout
        reasons.append(f"{'channels_last' if layout else 'NCHW'}: "
                       f"{'the measured rule' if measured else 'not measured'} for {what}")
    else:
        layout = layout_set == "true"
        reasons.append(f"{'channels_last' if layout else 'NCHW'}: device.channels_last={layout_set}")
    return Precision(bf16, layout, workload, amp_set, layout_set, "; ".join(reasons))
