"""Device choice and seeding; the precision a path runs in is chosen by nascli.precision."""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass

import numpy as np
import torch

from nascli.datashape import DataShape
from nascli.errors import UserError
from nascli.precision import NETWORK, Precision, choose


@dataclass
class DeviceConfig:
    type: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "auto"  # auto | bf16 | off: bf16 autocast for training and evaluation (nascli.precision)
    channels_last: str = "auto"  # auto | true | false: NHWC activations and weights
    threads: int | None = None  # torch intra-op threads on CPU (default: torch's choice)
    deterministic: bool = True


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    amp: bool
    channels_last: bool
    precision: Precision | None = None  # what chose amp and channels_last (None: set by hand)

    def autocast(self):
        if self.amp:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        """A batch moved here in the memory format the models run in (as the loaders hand batches out)."""
        x = x.to(self.device)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def describe(self) -> str:
        name = str(self.device)
        if self.device.type == "cuda":
            name += f" ({torch.cuda.get_device_name(self.device)})"
        flags = [f for f, on in (("bf16", self.amp), ("channels_last", self.channels_last)) if on]
        return name + (f" [{', '.join(flags)}]" if flags else "")

    def record(self) -> dict:
        """The manifest's `precision`: what ran, the settings and the reason."""
        if self.precision is not None:
            return self.precision.record()
        return {"amp": "bf16" if self.amp else "off", "channels_last": self.channels_last}


def memory_format_of(model: torch.nn.Module) -> torch.memory_format:
    """The layout a model's conv weights are stored in, so inputs made for it match (no conversion per call)."""
    weight = next((p for p in model.parameters() if p.dim() == 4), None)
    return torch.contiguous_format if weight is None else layout_of(weight)


def layout_of(t: torch.Tensor) -> torch.memory_format:
    """How `t` is stored: channels_last only where that differs from NCHW (one channel or one position is both)."""
    nhwc = t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if nhwc else torch.contiguous_format


def pick_device(cfg) -> torch.device:
    """The device `cfg` (a `device` config node) names, with its thread count and CUDA flags set."""
    kind = str(cfg.type)
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("device=cuda was asked for but no CUDA device is available; use device=cpu or device=auto")
    if kind != "cpu" and not kind.startswith("cuda"):
        raise UserError(f"unknown device type '{kind}'; use auto, cpu or cuda")
    device = torch.device(kind)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not cfg.deterministic
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def resolve(cfg, workload: str = NETWORK, shape: DataShape | None = None, space: str = "") -> Runtime:
    """The runtime of `workload` in `space` on the device `cfg` names, for data of `shape`: what `auto` precision
    is chosen by (nascli.precision; an unknown space or shape keeps float32 NCHW)."""
    device = pick_device(cfg)
    side = min(shape.height, shape.width) if shape is not None else None
    precision = choose(cfg.amp, cfg.channels_last, device, workload, space, side)
    return Runtime(device, precision.bf16, precision.channels_last, precision)


def same_precision(recorded: dict | None, runtime: Runtime) -> None:
    """A resumed run continues in the precision it started in, or not at all (the rest would not be the same
    experiment). Runs from before the precision was recorded are not checked."""
    if not recorded or "amp" not in recorded:
        return
    now = runtime.record()
    was = (recorded["amp"], bool(recorded["channels_last"]))
    if was != (now["amp"], now["channels_last"]):
        raise UserError(f"this run trained with amp={was[0]} channels_last={was[1]} and would continue with "
                        f"amp={now['amp']} channels_last={now['channels_last']} here ({now.get('reason', '')}); "
                        "resume it on a machine like the one it started on")


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
