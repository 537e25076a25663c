"""Device choice, seeding and mixed precision."""

from __future__ import annotations

import contextlib
import functools
import random
import sys
from dataclasses import dataclass

import numpy as np
import torch

from nascli.errors import UserError


@dataclass
class DeviceConfig:
    type: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "off"  # off | bf16: bf16 autocast for training and evaluation (CUDA, and CPUs with bf16)
    channels_last: bool = False  # NHWC activations and weights
    threads: int | None = None  # torch intra-op threads on CPU (default: torch's choice)
    deterministic: bool = True


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    amp: bool
    channels_last: bool

    def autocast(self):
        if self.amp:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def describe(self) -> str:
        name = str(self.device)
        if self.device.type == "cuda":
            name += f" ({torch.cuda.get_device_name(self.device)})"
        flags = [f for f, on in (("bf16", self.amp), ("channels_last", self.channels_last)) if on]
        return name + (f" [{', '.join(flags)}]" if flags else "")


# `fp16` needs a gradient scaler in every training loop, which nascli does not have; `auto` needs the per-network
# rule that issue 31 derives from bench/precision_steps.py. Until then both are refused rather than ignored.
AMP_MODES = ("off", "bf16")


def amp_mode(value) -> str:
    """`device.amp` as one of AMP_MODES. Configs written before the modes said `amp: true/false`, which
    OmegaConf turns into the strings "True"/"False" in the str-typed field."""
    mode = str(value).strip().lower() if value is not None else "off"
    mode = {"false": "off", "true": "bf16", "none": "off"}.get(mode, mode)
    if mode == "fp16":
        raise UserError("device.amp=fp16 is not supported (nascli's training loops have no loss scaling); "
                        "use device.amp=bf16 or device.amp=off")
    if mode not in AMP_MODES:
        raise UserError(f"device.amp={value} is not a precision nascli knows; use device.amp=bf16 or device.amp=off")
    return mode


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (avx512_bf16 or amx_bf16), by oneDNN's own check."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(check()) if check is not None else False


@functools.cache
def _warn_emulated_bf16() -> None:
    """Once per process: resolve() runs again for every candidate a search trains."""
    # Emulated bf16 is correct, only slow, so this is a warning, not an error.
    print("nas: warning: device.amp=bf16 on a CPU without native bf16 (no avx512_bf16 or amx_bf16) runs "
          "emulated and slower than float32; device.amp=off is faster here", file=sys.stderr)


def memory_format_of(model: torch.nn.Module) -> torch.memory_format:
    """The layout a model's conv weights are stored in, so inputs made for it match (no conversion per call)."""
    weight = next((p for p in model.parameters() if p.dim() == 4), None)
    if weight is None:
        return torch.contiguous_format
    nhwc = not weight.is_contiguous() and weight.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if nhwc else torch.contiguous_format


def resolve(cfg) -> Runtime:
    kind = str(cfg.type)
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("device=cuda was asked for but no CUDA device is available; use device=cpu or device=auto")
    if kind != "cpu" and not kind.startswith("cuda"):
        raise UserError(f"unknown device type '{kind}'; use auto, cpu or cuda")
    device = torch.device(kind)
    on_cuda = device.type == "cuda"
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    if on_cuda:
        torch.backends.cudnn.benchmark = not cfg.deterministic
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    bf16 = amp_mode(cfg.amp) == "bf16"
    if bf16 and not on_cuda and not cpu_has_bf16():
        _warn_emulated_bf16()
    # channels_last is honoured everywhere: on CPU it measured 10-40% faster for fixed DARTS networks (bench/).
    return Runtime(device, bf16, bool(cfg.channels_last))


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run a block with n intra-op threads (None: leave as is), then restore: a task's result must not
    depend on the process it ran in, and CPU kernels round differently with another thread count."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def seed_everything(seed: int) -> torch.Generator:
    """Seed every global RNG and return a CPU generator for data order and augmentation."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
