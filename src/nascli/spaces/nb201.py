"""The NAS-Bench-201 cell space and NB201's exact macro skeleton.

Cell: 4 nodes, node i sums one op on every earlier node (6 edges), 5 ops. Network:
3x3 stem (C) + BN, three stages of N cells at C, 2C, 4C joined by residual reduction
blocks, BN-ReLU, global pool, linear. Genotype: {"cell": [[[op, 0]], [[op, 0], [op, 1]],
[[op, 0], [op, 1], [op, 2]]]}; NB201's `|op~0|+|op~0|op~1|+|...|` strings read and
write the same thing and key the benchmark table.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from nascli.errors import UserError
from nascli.spaces.base import DataShape, SearchSpace, expect, register_space
from nascli.spaces.ops import ReLUConvBN, Zero
from nascli.spaces.pooling import AvgPool
from nascli.spaces.presets import NB201_FAMILY

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NUM_NODES = 4  # node 0 is the cell input; nodes 1..3 each read all earlier nodes
EDGES = tuple((i, j) for i in range(1, NUM_NODES) for j in range(i))  # (to, from), NB201 order


@dataclass
class NB201NetConfig:
    channels: int = 16
    cells_per_stage: int = 5


@dataclass
class NB201SpaceConfig:
    name: str = "nb201"
    search: NB201NetConfig = field(default_factory=lambda: NB201NetConfig(channels=8, cells_per_stage=1))
    retrain: NB201NetConfig = field(default_factory=NB201NetConfig)


def nb201_op(name: str, c: int, affine: bool = True) -> nn.Module:
    if name == "none":
        return Zero(1)
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(c, c, 1, 1, 0, affine)
    if name == "nor_conv_3x3":
        return ReLUConvBN(c, c, 3, 1, 1, affine)
    if name == "avg_pool_3x3":
        return AvgPool(3, stride=1, padding=1)
    raise KeyError(name)


class InferCell(nn.Module):
    def __init__(self, ops: list[str], c: int):
        super().__init__()
        self.edges = nn.ModuleList(nb201_op(op, c) for op in ops)
        self.op_names = list(ops)  # edges[k] runs op_names[k] (latency tables)

    def forward(self, x):
        nodes = [x]
        k = 0
        for i in range(1, NUM_NODES):
            total = 0
            for _ in range(i):
                total = total + self.edges[k](nodes[EDGES[k][1]])
                k += 1
            nodes.append(total)
        return nodes[-1]


class ResNetBasicBlock(nn.Module):
    """NB201's reduction block: two ReLU-conv-BN (stride 2 first) plus an avg-pool + 1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0), nn.Conv2d(c_in, c_out, 1, bias=False)
        )

    def forward(self, x):
        return self.downsample(x) + self.conv_b(self.conv_a(x))


def nb201_skeleton(cell_factory, in_channels: int, channels: int, cells_per_stage: int):
    """NB201's stem and its 3 stages of cells joined by reduction blocks; (stem, layers, final channels).

    Shared by the stand-alone network and the SNAS supernet, so both have the benchmark's exact skeleton.
    """
    stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
    layers: list[nn.Module] = []
    c = channels
    for stage in range(3):
        if stage > 0:
            layers.append(ResNetBasicBlock(c, 2 * c))
            c *= 2
        layers.extend(cell_factory(c) for _ in range(cells_per_stage))
    return stem, nn.ModuleList(layers), c


class NB201Network(nn.Module):
    def __init__(self, cell_factory, in_channels: int, num_classes: int, channels: int, cells_per_stage: int):
        super().__init__()
        self.stem, self.cells, c = nb201_skeleton(cell_factory, in_channels, channels, cells_per_stage)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def features(self, x):
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self.lastact(x)

    def forward(self, x):
        return self.classifier(self.global_pooling(self.features(x)).flatten(1))


_ARCH_STR = re.compile(r"^\|(.+)\|$")


def parse_arch_str(text: str) -> list[list[list]]:
    """`|op~0|+|op~0|op~1|+|op~0|op~1|op~2|` -> nodes of [op, input] edges."""
    m = _ARCH_STR.match(text.strip())
    expect(m is not None, f"'{text}' is not an NB201 arch string like "
           "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|none~1|skip_connect~2|")
    nodes = []
    for part in text.strip().split("+"):
        edges = []
        for token in part.strip("|").split("|"):
            op, sep, src = token.partition("~")
            expect(sep == "~" and src.isdigit(), f"bad NB201 edge '{token}' in '{text}'; write op~input")
            edges.append([op, int(src)])
        nodes.append(edges)
    return nodes


def to_arch_str(cell: list) -> str:
    return "+".join("|" + "|".join(f"{op}~{src}" for op, src in node) + "|" for node in cell)


@register_space("nb201")
class NB201Space(SearchSpace):
    name = "nb201"
    Config = NB201SpaceConfig
    ops = NB201_OPS
    presets = {k: {"arch_str": v} for k, v in NB201_FAMILY.items()}
    has_benchmark = True

    def canonicalize(self, genotype: Any) -> dict:
        if isinstance(genotype, str):
            genotype = {"arch_str": genotype}
        expect(isinstance(genotype, dict) and ("cell" in genotype or "arch_str" in genotype),
               "an nb201 genotype is {\"cell\": [...]} or {\"arch_str\": \"|op~0|+|...|\"}")
        unknown = sorted(set(genotype) - {"cell", "arch_str"})
        expect(not unknown, f"unknown nb201 genotype key(s) {unknown}; use 'cell' or 'arch_str'")
        cell = genotype["cell"] if "cell" in genotype else parse_arch_str(genotype["arch_str"])
        expect(isinstance(cell, list) and len(cell) == NUM_NODES - 1,
               f"an nb201 cell has {NUM_NODES - 1} nodes (got {len(cell) if isinstance(cell, list) else cell!r})")
        out = []
        for i, node in enumerate(cell, start=1):
            expect(isinstance(node, list) and len(node) == i,
                   f"nb201 node {i} must have exactly {i} edges, one from each earlier node")
            by_src = {}
            for edge in node:
                expect(isinstance(edge, (list, tuple)) and len(edge) == 2, f"nb201 node {i}: bad edge {edge!r}")
                op, src = edge[0], edge[1]
                expect(op in self.ops, f"unknown op '{op}' in nb201 node {i}; nb201 ops are: {', '.join(self.ops)}")
                expect(isinstance(src, int) and 0 <= src < i, f"nb201 node {i}: input {src!r} is out of range 0..{i - 1}")
                expect(src not in by_src, f"nb201 node {i} has two edges from node {src}")
                by_src[src] = op
            out.append([[by_src[j], j] for j in range(i)])
        if "cell" in genotype and "arch_str" in genotype:
            expect(to_arch_str(out) == genotype["arch_str"].strip(), "nb201 genotype's 'cell' and 'arch_str' disagree")
        return {"cell": out}

    def from_ref(self, ref: str):
        if ref.startswith("|"):
            return self.make({"arch_str": ref})
        return self.preset(ref)

    def sample(self, rng: random.Random):
        return self.make({"cell": [[[rng.choice(self.ops), j] for j in range(i)] for i in range(1, NUM_NODES)]})

    def enumerate(self):
        """All 5^6 = 15,625 cells, ops varied over the edges in NB201 edge order (the last edge fastest)."""
        cells = []
        for ops in itertools.product(self.ops, repeat=len(EDGES)):
            it = iter(ops)
            cells.append(self.make({"cell": [[[next(it), j] for j in range(i)] for i in range(1, NUM_NODES)]}))
        return cells

    def mutate(self, arch, rng: random.Random):
        """One edge gets another op (NAS-Bench-201's regularized-evolution mutation)."""
        ops = self.edge_ops(arch)
        e = rng.randrange(len(ops))
        ops[e] = rng.choice([op for op in self.ops if op != ops[e]])
        it = iter(ops)
        return self.make({"cell": [[[next(it), j] for j in range(i)] for i in range(1, NUM_NODES)]})

    def edge_ops(self, arch) -> list[str]:
        """The 6 ops in NB201 edge order (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2)."""
        return [op for node in arch.genotype["cell"] for op, _ in node]

    def size_key(self, arch) -> str:
        """Every edge of a stage has the same channels and resolution, so an op costs the same on any edge:
        the network's size depends only on how many edges use each op (210 keys for 15,625 cells)."""
        ops = self.edge_ops(arch)
        return "nb201-size:" + ",".join(f"{op}={ops.count(op)}" for op in self.ops if op != "none")

    def arch_str(self, arch) -> str:
        return to_arch_str(arch.genotype["cell"])

    def describe(self, arch) -> str:
        return self.arch_str(arch)

    def benchmark_key(self, arch) -> str:
        return self.arch_str(arch)

    def functional_key(self, arch) -> str:
        """The arch string with dead edges set to `none`: an edge is dead when its input node only ever
        receives zeros or its output cannot reach the cell output. Cells equal up to dead edges
        compute the same function (up to a constant BN shift), so correlations count them once."""
        cell = arch.genotype["cell"]
        fed = [True] + [False] * (NUM_NODES - 1)  # node receives a non-zero signal from the input
        for i, node in enumerate(cell, start=1):
            fed[i] = any(op != "none" and fed[src] for op, src in node)
        reaches = [False] * (NUM_NODES - 1) + [True]  # node's value can influence the output
        for i in range(NUM_NODES - 2, -1, -1):
            reaches[i] = any(op != "none" and reaches[j] for j, node in enumerate(cell, start=1) if j > i
                             for op, src in node if src == i)
        live = [[[op if (op != "none" and fed[src] and reaches[i]) else "none", src] for op, src in node]
                for i, node in enumerate(cell, start=1)]
        return to_arch_str(live)

    def op_module(self, name: str, c: int, stride: int) -> nn.Module:
        expect(stride == 1, "nb201 cells have no strided ops")
        return nb201_op(name, c)

    def build(self, arch, shape: DataShape, net, auxiliary: bool = False):
        if auxiliary:
            raise UserError("the nb201 skeleton has no auxiliary head; set train.auxiliary_weight=0")
        ops = self.edge_ops(arch)
        return NB201Network(lambda c: InferCell(ops, c), shape.channels, shape.num_classes,
                            int(net.channels), int(net.cells_per_stage))


