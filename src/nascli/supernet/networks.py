"""Search networks (supernets) for the darts and nb201 spaces.

A supernet maps an input and one `Sample` per cell type (edge weights E x K, shared by
every cell of that type) to logits. `hard=True` runs one op per edge; soft runs all.
It also knows its space's edge order, so it turns architectures into one-hot samples
and architecture logits into genotypes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from nascli.arch import Arch
from nascli.registry import registrar
from nascli.spaces.base import DataShape, SearchSpace
from nascli.spaces.cell_network import reduction_layers
from nascli.spaces.darts import DARTS_OPS
from nascli.spaces.nb201 import NB201_OPS, nb201_skeleton
from nascli.spaces.ops import FactorizedReduce, ReLUConvBN
from nascli.supernet.darts_group import DartsEdgeGroup
from nascli.supernet.nb201_group import NB201EdgeGroup
from nascli.supernet.packed_bn import PackedBN

SUPERNETS: dict[str, type] = {}
register_supernet = registrar(SUPERNETS)


@dataclass
class Sample:
    """Edge weights for one cell type: soft mixture weights, or a (straight-through) one-hot."""

    weights: torch.Tensor  # E x K
    hard: bool = False


class SearchCell(nn.Module):
    """Nodes that sum one mixed edge from every earlier state; edges grouped by input state."""

    def __init__(self, group_cls, c: int, n_inputs: int, steps: int, reduction: bool, dense_max_pixels: int):
        super().__init__()
        self.n_inputs, self.steps, self.reduction, self.c = n_inputs, steps, reduction, c
        self.groups = nn.ModuleList()
        self.group_edges: list[list[int]] = []
        self.group_nodes: list[list[int]] = []
        for j in range(n_inputs + steps - 1):
            nodes = [i for i in range(steps) if j < n_inputs + i]
            stride = 2 if reduction and j < n_inputs else 1
            self.groups.append(group_cls(c, len(nodes), stride, dense_max_pixels))
            self.group_nodes.append(nodes)
            self.group_edges.append([edge_index(n_inputs, i, j) for i in nodes])

    def mix(self, states: list[torch.Tensor], sample: Sample) -> list[torch.Tensor]:
        self.input_hw = tuple(states[self.n_inputs - 1].shape[-2:])  # read by cost measurement
        acc: list[torch.Tensor | None] = [None] * self.steps
        for j, group in enumerate(self.groups):
            if j >= self.n_inputs:
                states.append(self._node(acc[j - self.n_inputs], states))
            w = sample.weights[self.group_edges[j]]
            outs = group.forward_hard(states[j], w) if sample.hard else group.forward_soft(states[j], w)
            for node, out in zip(self.group_nodes[j], outs, strict=True):
                if out is not None:
                    acc[node] = out if acc[node] is None else acc[node] + out
        states.append(self._node(acc[-1], states))
        return states

    def _node(self, value, states):
        if value is not None:
            return value
        # Every edge into this node is `none`: the node outputs zeros of the right shape.
        ref = states[self.n_inputs - 1]
        h, w = ref.shape[-2:]
        if self.reduction:
            h, w = (h + 1) // 2, (w + 1) // 2
        return ref.new_zeros(ref.shape[0], self.c, h, w)


def edge_index(n_inputs: int, node: int, src: int) -> int:
    """Global edge id: edges ordered by node, then input (DARTS's and NB201's order)."""
    return sum(n_inputs + m for m in range(node)) + src


class Supernet(nn.Module, ABC):
    cell_types: tuple[str, ...]
    ops: tuple[str, ...]
    n_inputs: int
    steps: int

    @property
    def num_edges(self) -> int:
        return sum(self.n_inputs + i for i in range(self.steps))

    @abstractmethod
    def search_cells(self) -> list[tuple[str, SearchCell]]:
        """(cell type, cell) of every searched cell, in network order."""

    def cell_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.cell_types, 0)
        for kind, _ in self.search_cells():
            counts[kind] += 1
        return counts

    # -- BatchNorm bookkeeping ------------------------------------------------------------
    def _bns(self):
        return [m for m in self.modules() if isinstance(m, (nn.BatchNorm2d, PackedBN))]

    def set_bn_momentum(self, momentum: float) -> None:
        for m in self._bns():
            m.momentum = momentum

    @contextmanager
    def recalibrating(self):
        """Reset BN statistics for a new child; restore the supernet's own ones afterwards."""
        saved = {k: v.clone() for k, v in self.state_dict().items() if "running_" in k or "num_batches" in k}
        momenta = [m.momentum for m in self._bns()]
        for m in self._bns():
            m.reset_running_stats()
        try:
            yield
        finally:
            self.load_state_dict(saved, strict=False)
            for m, mom in zip(self._bns(), momenta, strict=True):
                m.momentum = mom

    # -- architectures ---------------------------------------------------------------------
    @abstractmethod
    def onehot(self, arch: Arch) -> dict[str, Sample]:
        """The one-hot sample that runs exactly `arch` in this supernet."""

    @abstractmethod
    def derive(self, alphas: dict[str, torch.Tensor], rule: str = "snas") -> dict:
        """The genotype the architecture weights choose under `rule`."""


@register_supernet("darts")
class DartsSupernet(Supernet):
    cell_types = ("normal", "reduce")
    ops = DARTS_OPS
    n_inputs = 2

    def __init__(self, shape: DataShape, channels: int, layers: int, steps: int = 4, stem_multiplier: int = 3,
                 dense_max_pixels: int = 64):
        super().__init__()
        self.steps = steps
        c_curr = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(shape.channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, channels
        self.cells = nn.ModuleList()
        self.preprocess = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            if reduction:
                c_curr *= 2
            pre0 = FactorizedReduce(c_pp, c_curr, affine=False) if reduction_prev else \
                ReLUConvBN(c_pp, c_curr, 1, 1, 0, affine=False)
            self.preprocess.append(nn.ModuleList([pre0, ReLUConvBN(c_p, c_curr, 1, 1, 0, affine=False)]))
            self.cells.append(SearchCell(DartsEdgeGroup, c_curr, 2, steps, reduction, dense_max_pixels))
            reduction_prev = reduction
            c_pp, c_p = c_p, steps * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, shape.num_classes)

    def search_cells(self):
        return [("reduce" if cell.reduction else "normal", cell) for cell in self.cells]

    def forward(self, x: torch.Tensor, samples: dict[str, Sample]) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell, (pre0, pre1) in zip(self.cells, self.preprocess, strict=True):
            states = cell.mix([pre0(s0), pre1(s1)], samples["reduce" if cell.reduction else "normal"])
            s0, s1 = s1, torch.cat(states[2:], dim=1)
        return self.classifier(self.global_pooling(s1).flatten(1))

    def onehot(self, arch: Arch) -> dict[str, Sample]:
        k = len(self.ops)
        out = {}
        for kind in self.cell_types:
            w = torch.zeros(self.num_edges, k)
            w[:, 0] = 1.0  # absent edges are `none`
            for node, edges in enumerate(arch.genotype[kind]):
                for op, src in edges:
                    e = edge_index(2, node, src)
                    w[e].zero_()
                    w[e, self.ops.index(op)] = 1.0
            out[kind] = Sample(w.to(self.classifier.weight.device), hard=True)
        return out

    def derive(self, alphas: dict[str, torch.Tensor], rule: str = "snas") -> dict:
        genotype = {}
        for kind in self.cell_types:
            probs = torch.softmax(alphas[kind].detach().float().cpu(), dim=-1)
            nodes = []
            for node in range(self.steps):
                srcs = range(2 + node)
                if rule == "snas":
                    # SNAS keeps every edge with its argmax op; `none` drops the edge.
                    edges = [[self.ops[int(probs[edge_index(2, node, j)].argmax())], j] for j in srcs]
                elif rule == "darts":
                    # DARTS: the two inputs with the strongest non-`none` op, each with that op.
                    strength = {j: probs[edge_index(2, node, j), 1:].max().item() for j in srcs}
                    keep = sorted(sorted(srcs, key=lambda j: -strength[j])[:2])
                    edges = [[self.ops[1 + int(probs[edge_index(2, node, j), 1:].argmax())], j] for j in keep]
                else:
                    raise ValueError(f"unknown derive rule {rule!r}")
                nodes.append(edges)
            genotype[kind] = nodes
            genotype[f"{kind}_concat"] = list(range(2, 2 + self.steps))
        return genotype


@register_supernet("nb201")
class NB201Supernet(Supernet):
    cell_types = ("cell",)
    ops = NB201_OPS
    n_inputs = 1
    steps = 3

    def __init__(self, shape: DataShape, channels: int, cells_per_stage: int, dense_max_pixels: int = 0):
        super().__init__()
        self.stem, self.layers, c = nb201_skeleton(
            lambda c: SearchCell(NB201EdgeGroup, c, 1, 3, False, dense_max_pixels), shape.channels, channels,
            cells_per_stage)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, shape.num_classes)

    def search_cells(self):
        return [("cell", m) for m in self.layers if isinstance(m, SearchCell)]

    def forward(self, x: torch.Tensor, samples: dict[str, Sample]) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer.mix([x], samples["cell"])[-1] if isinstance(layer, SearchCell) else layer(x)
        return self.classifier(self.global_pooling(self.lastact(x)).flatten(1))

    def onehot(self, arch: Arch) -> dict[str, Sample]:
        w = torch.zeros(self.num_edges, len(self.ops))
        for node, edges in enumerate(arch.genotype["cell"]):
            for op, src in edges:
                w[edge_index(1, node, src), self.ops.index(op)] = 1.0
        return {"cell": Sample(w.to(self.classifier.weight.device), hard=True)}

    def derive(self, alphas: dict[str, torch.Tensor], rule: str = "snas") -> dict:
        # NB201 cells have fixed edges: every rule keeps each edge with its argmax op (`none` included).
        probs = torch.softmax(alphas["cell"].detach().float().cpu(), dim=-1)
        cell = [[[self.ops[int(probs[edge_index(1, node, j)].argmax())], j] for j in range(node + 1)]
                for node in range(self.steps)]
        return {"cell": cell}


def build_supernet(space: SearchSpace, shape: DataShape, dense_max_pixels: int = 64, size=None) -> Supernet:
    """The supernet of `space` at its search size (space.cfg.search), or at `size` (e.g. space.cfg.retrain)."""
    from nascli.errors import UserError

    if space.name not in SUPERNETS:
        raise UserError(f"no supernet for space '{space.name}'; supernet strategies search "
                        f"{', '.join(sorted(SUPERNETS))}")
    net = size if size is not None else space.cfg.search
    if space.name == "darts":
        return DartsSupernet(shape, int(net.channels), int(net.layers), int(space.cfg.nodes),
                             int(net.stem_multiplier), dense_max_pixels)
    return NB201Supernet(shape, int(net.channels), int(net.cells_per_stage), dense_max_pixels)
