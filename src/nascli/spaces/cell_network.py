"""Fixed (stand-alone) networks for the cell genotypes shared by the darts and pnas spaces.

Genotype shape: {"normal": nodes, "normal_concat": [...], "reduce": nodes, "reduce_concat": [...]}
where `nodes` is a list of intermediate nodes, each a list of [op, input] edges that are
summed; inputs 0 and 1 are the two previous cells' outputs, 2+ earlier nodes. A missing
"reduce" means the normal cell is reused with stride 2 (PNAS). The macro skeleton is
DARTS's NetworkCIFAR: 3C stem, `layers` cells, reductions at 1/3 and 2/3 of the depth,
optional auxiliary head at 2/3.
"""

from __future__ import annotations

import torch
from torch import nn

from nascli.spaces.ops import FactorizedReduce, ReLUConvBN, drop_path, make_op


class Cell(nn.Module):
    def __init__(self, nodes, concat, c_prev_prev, c_prev, c, reduction, reduction_prev):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = (
            FactorizedReduce(c_prev_prev, c) if reduction_prev else ReLUConvBN(c_prev_prev, c, 1, 1, 0)
        )
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0)
        self.nodes = [[(op, int(src)) for op, src in node] for node in nodes]
        self.concat = [int(i) for i in concat]
        self.multiplier = len(self.concat)
        self.c = c
        self.edges = nn.ModuleList()
        self.op_names = [op for node in self.nodes for op, _ in node]  # edges[k] runs op_names[k] (latency tables)
        for node in self.nodes:
            for op, src in node:
                stride = 2 if reduction and src < 2 else 1
                self.edges.append(make_op(op, c, stride))
        self.drop_prob = 0.0

    def forward(self, s0, s1):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        out_hw = states[1].shape[-2:]
        if self.reduction:
            out_hw = ((out_hw[0] + 1) // 2, (out_hw[1] + 1) // 2)
        k = 0
        for node in self.nodes:
            total = None
            for op_name, src in node:
                h = self.edges[k](states[src])
                k += 1
                if self.training and self.drop_prob > 0 and op_name != "skip_connect":
                    h = drop_path(h, self.drop_prob)
                total = h if total is None else total + h
            if total is None:
                # A node whose every edge is `none` (SNAS edge_all children) outputs zeros.
                total = states[1].new_zeros(states[1].shape[0], self.c, *out_hw)
            states.append(total)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    def __init__(self, c, num_classes):
        super().__init__()
        # DARTS pools an 8x8 map with a 5x5/3 window to 2x2; adaptive pooling gives the
        # same 2x2 for any input resolution (digits reach this point at 2x2 already).
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class CellNetwork(nn.Module):
    def __init__(self, genotype, in_channels, num_classes, channels, layers, stem_multiplier=3, auxiliary=False):
        super().__init__()
        c_curr = stem_multiplier * channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr)
        )
        normal, normal_concat = genotype["normal"], genotype["normal_concat"]
        reduce = genotype.get("reduce", normal)
        reduce_concat = genotype.get("reduce_concat", normal_concat)
        c_pp, c_p, c_curr = c_curr, c_curr, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        self.reduction_layers = reduction_layers(layers)
        c_aux = None
        for i in range(layers):
            reduction = i in self.reduction_layers
            if reduction:
                c_curr *= 2
            nodes, concat = (reduce, reduce_concat) if reduction else (normal, normal_concat)
            cell = Cell(nodes, concat, c_pp, c_p, c_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.multiplier * c_curr
            if i == 2 * layers // 3:
                c_aux = c_p
        self.aux_index = 2 * layers // 3
        self.auxiliary = AuxiliaryHead(c_aux, num_classes) if auxiliary and c_aux else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def set_drop_path(self, prob: float) -> None:
        for cell in self.cells:
            cell.drop_prob = prob

    def forward(self, x):
        s0 = s1 = self.stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if i == self.aux_index and self.auxiliary is not None and self.training:
                aux = self.auxiliary(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return (logits, aux) if aux is not None else logits


def reduction_layers(layers: int) -> tuple[int, ...]:
    """Indices of the reduction cells: 1/3 and 2/3 of the depth (DARTS)."""
    return tuple(sorted({layers // 3, 2 * layers // 3}))
