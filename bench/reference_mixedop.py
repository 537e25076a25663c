"""A plain MixedOp DARTS supernet, written the way the DARTS/SNAS reference code does it.

It is the yardstick for bench/ ratios: every op of every edge is its own module call,
edge output = sum_k w_k * op_k(x), NCHW tensors, BN affine=False, BN after pools.
"""

from __future__ import annotations

import torch
from torch import nn

from nascli.spaces.cell_network import reduction_layers
from nascli.spaces.cropped_conv import DepthwiseConv
from nascli.spaces.darts import DARTS_OPS
from nascli.spaces.ops import FactorizedReduce, ReLUConvBN, make_op


class MixedOp(nn.Module):
    def __init__(self, c, stride):
        super().__init__()
        self.ops = nn.ModuleList(make_op(name, c, stride, affine=False, bn_after_pool=True) for name in DARTS_OPS)
        for m in self.ops.modules():  # the reference runs the library's depthwise conv, all taps
            if isinstance(m, DepthwiseConv):
                m.__class__ = nn.Conv2d

    def forward(self, x, weights):
        return sum(w * op(x) for w, op in zip(weights, self.ops, strict=True))


class SearchCell(nn.Module):
    def __init__(self, steps, c_pp, c_p, c, reduction, reduction_prev):
        super().__init__()
        self.reduction = reduction
        self.pre0 = FactorizedReduce(c_pp, c, affine=False) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0, False)
        self.pre1 = ReLUConvBN(c_p, c, 1, 1, 0, False)
        self.steps = steps
        self.ops = nn.ModuleList()
        for i in range(steps):
            for j in range(2 + i):
                self.ops.append(MixedOp(c, 2 if reduction and j < 2 else 1))

    def forward(self, s0, s1, weights):
        states = [self.pre0(s0), self.pre1(s1)]
        offset = 0
        for _ in range(self.steps):
            s = sum(self.ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-self.steps:], dim=1)


class ReferenceSupernet(nn.Module):
    def __init__(self, in_channels, num_classes, c=8, layers=5, steps=4, stem_multiplier=3):
        super().__init__()
        c_curr = stem_multiplier * c
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            if reduction:
                c_curr *= 2
            self.cells.append(SearchCell(steps, c_pp, c_p, c_curr, reduction, reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, steps * c_curr
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)
        edges = sum(2 + i for i in range(steps))
        self.alpha_normal = nn.Parameter(1e-3 * torch.randn(edges, len(DARTS_OPS)))
        self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(edges, len(DARTS_OPS)))

    def forward(self, x, weights_normal=None, weights_reduce=None):
        wn = torch.softmax(self.alpha_normal, -1) if weights_normal is None else weights_normal
        wr = torch.softmax(self.alpha_reduce, -1) if weights_reduce is None else weights_reduce
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, wr if cell.reduction else wn)
        return self.classifier(self.pool(s1).flatten(1))
