"""Every edge that reads one node of an NB-201 search cell, with all 5 ops per edge.

All edges from the same node share their input, so their 1x1 and 3x3 convolutions
are one convolution each with the edges' filters stacked as output channels; ReLU and
the (weight-free) average pool are computed once.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nascli.spaces.nb201 import NB201_OPS
from nascli.spaces.pooling import avg_pool
from nascli.supernet.edge_group import EdgeGroup
from nascli.supernet.packed_bn import PackedBN

OP_INDEX = {name: i for i, name in enumerate(NB201_OPS)}


class NB201EdgeGroup(EdgeGroup):
    ops = NB201_OPS

    def __init__(self, c: int, num_edges: int, stride: int = 1, dense_max_pixels: int = 0):
        super().__init__()
        assert stride == 1, "NB-201 cells keep their resolution"
        e = num_edges
        self.c, self.e, self.stride = c, e, stride
        self.conv1 = nn.Parameter(torch.empty(e * c, c, 1, 1).uniform_(-1 / math.sqrt(c), 1 / math.sqrt(c)))
        self.conv3 = nn.Parameter(torch.empty(e * c, c, 3, 3).uniform_(-1 / math.sqrt(9 * c), 1 / math.sqrt(9 * c)))
        self.bn1 = PackedBN(e * c)
        self.bn3 = PackedBN(e * c)

    def _pool(self, x):
        return avg_pool(x, 3, 1, 1)

    def forward_soft(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n, c, h, wd = x.shape
        e = self.e
        r = F.relu(x)
        c1 = self.bn1(F.conv2d(r, self.conv1)).view(n, e, c, h, wd).transpose(0, 1)
        c3 = self.bn3(F.conv2d(r, self.conv3, padding=1)).view(n, e, c, h, wd).transpose(0, 1)

        def col(op):
            return w[:, OP_INDEX[op]].view(e, 1, 1, 1, 1)

        return col("skip_connect") * x + col("nor_conv_1x1") * c1 + col("nor_conv_3x3") * c3 \
            + col("avg_pool_3x3") * self._pool(x)


    def run_op(self, x: torch.Tensor, edge: int, k: int, cache: dict | None = None) -> torch.Tensor | None:
        cache = {} if cache is None else cache
        name = self.ops[k]
        if name == "none":
            return None
        if name == "skip_connect":
            return x
        if name == "avg_pool_3x3":
            if "pool" not in cache:
                cache["pool"] = self._pool(x)
            return cache["pool"]
        if "relu" not in cache:
            cache["relu"] = F.relu(x)
        lo, hi = edge * self.c, (edge + 1) * self.c
        if name == "nor_conv_1x1":
            return self.bn1(F.conv2d(cache["relu"], self.conv1[lo:hi]), lo, hi)
        return self.bn3(F.conv2d(cache["relu"], self.conv3[lo:hi], padding=1), lo, hi)
