"""Convolutions that compute exactly what F.conv2d / nn.Conv2d compute, skipping the kernel taps that only
ever read padding.

On a small feature map most taps of a large or dilated kernel fall outside the image at every output
position: a 5x5 kernel on 2x2 pixels reaches its input with its central 3x3 only, and a dilated 5x5 (dilation
2) on 2x2 pixels with its centre alone. Those taps multiply zeros, so dropping them (a smaller kernel, less
padding) leaves every output the same, and every gradient too (a dropped tap's gradient is exactly 0 either
way). It matters on the CPU because oneDNN's backward for large and dilated depthwise kernels is slow at these
sizes: on [64, 64, 2, 2] a dilated 5x5 took 2.3 ms for its weight gradient against 0.2 ms for a 3x3. DARTS
cells on 8x8 digits reach 4x4 and 2x2 after their reductions; one training step of the `make run` cell got
1.3x faster, measured in `bench/cropped_conv.py`.

`cropped_conv2d` serves any convolution (the SNAS supernet's grouped kernels, SMASH's generated ones);
`DepthwiseConv` subclasses nn.Conv2d (same state_dict, same repr) for the DARTS-family ops. Inside
`reference_kernels()` both run the full kernel, so the FLOP counter counts what a layer nominally computes.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from nascli.spaces.reference_kernels import fast_path


@lru_cache(maxsize=1024)  # on every forward of every conv: a network has few distinct (size, kernel) pairs
def reaching_taps(size: int, kernel: int, dilation: int, padding: int) -> tuple[int, int]:
    """The first and last tap (0 .. kernel-1) whose offset from the output position, dilation * tap - padding,
    can land inside an input of `size` pixels (|offset| <= size - 1); taps outside that range read padding at
    every output position, whatever the stride."""
    offsets = [dilation * tap - padding for tap in range(kernel)]
    inside = [tap for tap, off in enumerate(offsets) if -(size - 1) <= off <= size - 1]
    # No tap reaching the image (padding wider than the kernel's reach) leaves the kernel whole: the library
    # conv then computes the all-padding windows as it always did.
    return (inside[0], inside[-1]) if inside else (0, kernel - 1)


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def cropped_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride=1, padding=0,
                   dilation=1, groups: int = 1) -> torch.Tensor:
    """F.conv2d(x, weight, bias, stride, padding, dilation, groups) through the taps that reach `x`."""
    if not fast_path(x) or isinstance(padding, str):
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    spans = [reaching_taps(x.shape[2 + i], weight.shape[2 + i], dilation[i], padding[i]) for i in (0, 1)]
    if all(lo == 0 and hi == weight.shape[2 + i] - 1 for i, (lo, hi) in enumerate(spans)):
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    (lo_h, hi_h), (lo_w, hi_w) = spans
    kept = weight[:, :, lo_h:hi_h + 1, lo_w:hi_w + 1]
    # The output keeps its size: the same first window (padding shrinks by the dropped leading taps) and the
    # same number of windows; the trailing padding is whatever that needs.
    pads, dils = [], []
    for i in (0, 1):
        size, k, lo, hi = x.shape[2 + i], weight.shape[2 + i], spans[i][0], spans[i][1]
        out = (size + 2 * padding[i] - dilation[i] * (k - 1) - 1) // stride[i] + 1
        lead = padding[i] - dilation[i] * lo
        trail = (out - 1) * stride[i] + dilation[i] * (hi - lo) + 1 - size - lead
        pads.append((lead, trail))
        dils.append(dilation[i] if hi > lo else 1)
    if all(lead == trail for lead, trail in pads):
        return F.conv2d(x, kept, bias, stride, (pads[0][0], pads[1][0]), tuple(dils), groups)
    # Stride can leave the last window short of the symmetric padding: pad each side as needed instead.
    # A negative amount crops input rows that no window reads.
    x = F.pad(x, (pads[1][0], pads[1][1], pads[0][0], pads[0][1]))
    return F.conv2d(x, kept, bias, stride, 0, tuple(dils), groups)


class DepthwiseConv(nn.Conv2d):
    """nn.Conv2d(c, c, kernel, stride, padding, dilation, groups=c, bias=False) with the cropped CPU path."""

    def __init__(self, c: int, kernel: int, stride: int, padding: int, dilation: int = 1):
        super().__init__(c, c, kernel, stride=stride, padding=padding, dilation=dilation, groups=c, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cropped_conv2d(x, self.weight, None, self.stride, self.padding, self.dilation, self.groups)
