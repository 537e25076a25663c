"""DARTS-family candidate operations (the DARTS, SNAS and PNAS cell vocabularies).

Each constructor takes (C, stride, affine) and keeps the channel count. `affine=False`
is what weight-sharing supernets use (BN scale/shift would otherwise absorb the
architecture weights, quark0/darts#10).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from nascli.spaces.cropped_conv import DepthwiseConv
from nascli.spaces.pooling import AvgPool, MaxPool


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in, c_out, kernel, stride, padding, affine=True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class DilConv(nn.Sequential):
    def __init__(self, c_in, c_out, kernel, stride, padding, dilation, affine=True):
        super().__init__(
            nn.ReLU(inplace=False),
            DepthwiseConv(c_in, kernel, stride, padding, dilation),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked depthwise-separable convolutions (DARTS's sep_conv)."""

    def __init__(self, c_in, c_out, kernel, stride, padding, affine=True):
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1, affine),
            DilConv(c_in, c_out, kernel, 1, padding, 1, affine),
        )


class Conv7x1_1x7(nn.Sequential):
    def __init__(self, c, stride, affine=True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
            nn.Conv2d(c, c, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
            nn.BatchNorm2d(c, affine=affine),
        )


class Zero(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset strided 1x1 convs (keeps all pixels)."""

    def __init__(self, c_in, c_out, affine=True):
        super().__init__()
        assert c_out % 2 == 0, "FactorizedReduce needs an even channel count"
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x):
        x = self.relu(x)
        # Odd sizes (7x7 after two halvings of 28) would give the two branches different
        # shapes; padding to even makes both ceil(H/2), like the strided convs and pools.
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            x = F.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


def _pool(kind: str, stride: int, c: int, affine: bool, bn_after_pool: bool) -> nn.Module:
    pool = AvgPool(3, stride=stride, padding=1) if kind == "avg" else MaxPool(3, stride=stride, padding=1)
    # DARTS search cells put a BN after pooling so pools are on the same scale as convs.
    return nn.Sequential(pool, nn.BatchNorm2d(c, affine=False)) if bn_after_pool else pool


OpFactory = Callable[[int, int, bool, bool], nn.Module]

OPS: dict[str, OpFactory] = {
    "none": lambda c, s, affine, bnp: Zero(s),
    "avg_pool_3x3": lambda c, s, affine, bnp: _pool("avg", s, c, affine, bnp),
    "max_pool_3x3": lambda c, s, affine, bnp: _pool("max", s, c, affine, bnp),
    "skip_connect": lambda c, s, affine, bnp: nn.Identity() if s == 1 else FactorizedReduce(c, c, affine),
    "sep_conv_3x3": lambda c, s, affine, bnp: SepConv(c, c, 3, s, 1, affine),
    "sep_conv_5x5": lambda c, s, affine, bnp: SepConv(c, c, 5, s, 2, affine),
    "sep_conv_7x7": lambda c, s, affine, bnp: SepConv(c, c, 7, s, 3, affine),
    "dil_conv_3x3": lambda c, s, affine, bnp: DilConv(c, c, 3, s, 2, 2, affine),
    "dil_conv_5x5": lambda c, s, affine, bnp: DilConv(c, c, 5, s, 4, 2, affine),
    "conv_7x1_1x7": lambda c, s, affine, bnp: Conv7x1_1x7(c, s, affine),
}

PARAMETER_FREE = frozenset({"none", "skip_connect", "avg_pool_3x3", "max_pool_3x3"})


def make_op(name: str, c: int, stride: int, affine: bool = True, bn_after_pool: bool = False) -> nn.Module:
    return OPS[name](c, stride, affine, bn_after_pool)


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples of a branch with probability drop_prob (scaled to keep the mean)."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.size(0), 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x * mask / keep
