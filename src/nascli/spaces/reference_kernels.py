"""The switch between nascli's exact fast CPU kernels (pooling.py, depthwise.py) and PyTorch's own.

The fast kernels compute what the library layers compute, through cheaper ops. Two readers must see the
library layers instead: the FLOP counter, which counts what an op nominally does (a pool as a pool, a 5x5
convolution as 5x5 even where most of its taps only read padding), and the reference implementations the
fast kernels are tested and benchmarked against.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch

_REFERENCE = ContextVar("nascli_reference_kernels", default=False)

# Which fast kernels ops run through; bumped when a change makes ops cost differently, so that measurements
# cached across processes (the per-op latency tables) are taken again. 2: cropped convolutions.
KERNELS_VERSION = 2


@contextmanager
def reference_kernels() -> Iterator[None]:
    """Run PyTorch's own pooling and convolution kernels inside this block."""
    token = _REFERENCE.set(True)
    try:
        yield
    finally:
        _REFERENCE.reset(token)


def fast_path(x: torch.Tensor) -> bool:
    """Whether a fast kernel may run on `x`: a 4-d CPU tensor outside `reference_kernels()` (CUDA's library
    kernels are already fast)."""
    return x.device.type == "cpu" and x.dim() == 4 and not _REFERENCE.get()
