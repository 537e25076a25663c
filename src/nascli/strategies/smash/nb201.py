"""SMASH on NAS-Bench-201: a HyperNet generates every convolution a cell's choice puts on an edge.

What is generated and what is shared follows from what the architecture decides. In NB201 the
cell decides, per edge, which op runs; the stem, the residual reduction blocks and the classifier
are the same for every cell. So the HyperNet generates the weights of each `nor_conv_1x1` and
`nor_conv_3x3` on each edge of each cell position (the only weights whose existence and role the
cell changes), and everything else is learned and shared. The membank network is the same split:
there the architecture decides the 1x1 bottlenecks' wiring, and SMASH generates exactly those.

Conditioning: the cell's encoding (a one-hot op per edge, 6 x 5), the edge being generated and
the cell's position in the network (both one-hot), plus noise z. An MLP maps each (position, edge)
row to a hidden code; one linear head per (stage, kernel size) turns the code into that stage's
c x c x k x k weight, normalised by its Frobenius norm as SMASH's `wn2d` (in float32: see the
membank HyperNet). `conditioning=none` replaces the HyperNet by one freely learned weight per
(position, edge, op), normalised the same way: plain single-path weight sharing with uniform
sampling (SPOS, Guo et al. 2020) on the same network.

BN is affine-free with batch statistics, as in the membank main network: running statistics shared
by random cells would mix, and with batch statistics a cell is scored with no recalibration pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from nascli.arch import Arch
from nascli.errors import UserError
from nascli.spaces.base import DataShape
from nascli.spaces.nb201 import EDGES, NB201_OPS, NUM_NODES
from nascli.spaces.pooling import avg_pool
from nascli.strategies.smash.mainnet import bn

CONV_KERNELS = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}
OP_INDEX = {op: i for i, op in enumerate(NB201_OPS)}


def edge_ops(arch: Arch) -> list[str]:
    return [op for node in arch.genotype["cell"] for op, _ in node]


class NB201Layout:
    """Where the cells are: `cells_per_stage` cells at each of 3 stages of C, 2C, 4C channels."""

    def __init__(self, channels: int, cells_per_stage: int):
        if channels < 1 or cells_per_stage < 1:
            raise UserError("SMASH on nb201 needs space.search.channels and space.search.cells_per_stage >= 1")
        self.channels, self.cells_per_stage = channels, cells_per_stage
        self.positions = 3 * cells_per_stage
        self.edges = len(EDGES)

    def stage(self, position: int) -> int:
        return position // self.cells_per_stage

    def width(self, position: int) -> int:
        return self.channels * 2 ** self.stage(position)


class NB201Encoder:
    """The cell as a [edges, ops] one-hot: what the HyperNet is conditioned on."""

    def __init__(self, layout: NB201Layout):
        self.layout = layout

    def check(self, arch: Arch) -> None:
        if arch.space != "nb201":
            raise UserError(f"architecture {arch.arch_id} is a {arch.space} architecture; this SMASH run "
                            "searched nb201: rank nb201 cells with it (space=nb201)")

    def encode(self, arch: Arch) -> torch.Tensor:
        c = torch.zeros(self.layout.edges, len(NB201_OPS))
        for e, op in enumerate(edge_ops(arch)):
            c[e, OP_INDEX[op]] = 1.0
        return c

    def scramble(self, conditioning: torch.Tensor, arch: Arch) -> torch.Tensor:
        """The ops moved to other edges (a seeded permutation per cell): the HyperNet then conditions on
        another wiring of the same ops, SMASH's ablation."""
        g = torch.Generator().manual_seed(int(arch.arch_id, 16) % 2**31)
        return conditioning[torch.randperm(conditioning.shape[0], generator=g)]


def _normalised(w: torch.Tensor) -> torch.Tensor:
    w = w.float()
    return w / w.norm().clamp_min(1e-8)


class NB201HyperNet(nn.Module):
    """(cell encoding, edge, position, z) -> the conv weights of that cell's conv edges."""

    def __init__(self, layout: NB201Layout, z_channels: int, width: int, depth: int):
        super().__init__()
        if depth < 1 or width < 1 or z_channels < 0:
            raise UserError("strategy.hypernet.depth and width must be >= 1 and z_channels >= 0")
        self.layout, self.z_channels = layout, z_channels
        features = layout.edges * len(NB201_OPS) + layout.edges + layout.positions + z_channels
        layers: list[nn.Module] = []
        for i in range(depth):
            linear = nn.Linear(features if i == 0 else width, width, bias=False)
            nn.init.orthogonal_(linear.weight)
            layers += [weight_norm(linear), nn.LeakyReLU(0.02)]
        self.body = nn.Sequential(*layers)
        self.heads = nn.ModuleDict()
        for stage in range(3):
            c = layout.channels * 2 ** stage
            for op, k in CONV_KERNELS.items():
                head = nn.Linear(width, c * c * k * k, bias=False)
                nn.init.orthogonal_(head.weight)
                self.heads[f"{stage}_{op}"] = weight_norm(head)
        positions = torch.eye(layout.positions).repeat_interleave(layout.edges, 0)
        edges = torch.eye(layout.edges).repeat(layout.positions, 1)
        self.register_buffer("where", torch.cat([edges, positions], 1), persistent=False)

    def noise(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(self.layout.positions * self.layout.edges, self.z_channels, generator=generator)

    def forward(self, arch: Arch, conditioning: torch.Tensor, z: torch.Tensor) -> dict[tuple[int, int], torch.Tensor]:
        """{(position, edge): weight [c, c, k, k]} for every conv edge of the cell at every position."""
        lay = self.layout
        rows = self.where.shape[0]
        device = self.where.device
        cell = conditioning.to(device).flatten().expand(rows, -1)
        h = self.body(torch.cat([cell, self.where, z.to(device)], 1))
        ops = edge_ops(arch)
        out: dict[tuple[int, int], torch.Tensor] = {}
        for stage in range(3):
            c = lay.channels * 2 ** stage
            for op, k in CONV_KERNELS.items():
                # one head call per (stage, kernel): every position of the stage at once
                wanted = [(p, e) for p in range(stage * lay.cells_per_stage, (stage + 1) * lay.cells_per_stage)
                          for e in range(lay.edges) if ops[e] == op]
                if not wanted:
                    continue
                index = torch.tensor([p * lay.edges + e for p, e in wanted], device=device)
                generated = self.heads[f"{stage}_{op}"](h.index_select(0, index))
                for (p, e), w in zip(wanted, generated, strict=True):
                    out[(p, e)] = _normalised(w).view(c, c, k, k)
        return out


class NB201FreeWeights(nn.Module):
    """conditioning=none: one learned weight per (position, edge, conv op) in place of the HyperNet (SPOS)."""

    def __init__(self, layout: NB201Layout):
        super().__init__()
        self.layout, self.z_channels = layout, 0
        self.weights = nn.ParameterDict()
        for p in range(layout.positions):
            c = layout.width(p)
            for e in range(layout.edges):
                for op, k in CONV_KERNELS.items():
                    w = torch.empty(c, c, k, k)
                    nn.init.kaiming_normal_(w, nonlinearity="relu")
                    self.weights[f"{p}_{e}_{op}"] = nn.Parameter(w)

    def noise(self, generator: torch.Generator | None = None) -> torch.Tensor:
        del generator
        return torch.zeros(0)

    def forward(self, arch: Arch, conditioning: torch.Tensor, z: torch.Tensor) -> dict[tuple[int, int], torch.Tensor]:
        del conditioning, z
        ops = edge_ops(arch)
        return {(p, e): _normalised(self.weights[f"{p}_{e}_{ops[e]}"])
                for p in range(self.layout.positions) for e in range(self.layout.edges) if ops[e] in CONV_KERNELS}


class SmashNB201Net(nn.Module):
    """NB201's skeleton (stem, 3 stages of cells, residual reductions, classifier) running any cell with the
    conv weights it is given; every other weight is learned and shared."""

    def __init__(self, layout: NB201Layout, shape: DataShape):
        super().__init__()
        self.layout = layout
        c = layout.channels
        self.stem = nn.Parameter(torch.empty(c, shape.channels, 3, 3))
        self.reductions = nn.ParameterList()
        for stage in (1, 2):
            c_in, c_out = c * 2 ** (stage - 1), c * 2 ** stage
            self.reductions.extend([nn.Parameter(torch.empty(c_out, c_in, 3, 3)),
                                    nn.Parameter(torch.empty(c_out, c_out, 3, 3)),
                                    nn.Parameter(torch.empty(c_out, c_in, 1, 1))])
        self.fc = nn.Linear(4 * c, shape.num_classes)
        for p in (self.stem, *self.reductions):
            nn.init.kaiming_normal_(p, nonlinearity="relu")

    def cell(self, x: torch.Tensor, ops: list[str], position: int, weights: dict) -> torch.Tensor:
        nodes, relu = [x], {}
        k = 0
        for i in range(1, NUM_NODES):
            total = None
            for _ in range(i):
                op, src = ops[k], EDGES[k][1]
                y = None
                if op == "skip_connect":
                    y = nodes[src]
                elif op == "avg_pool_3x3":
                    y = avg_pool(nodes[src], 3, 1, 1)
                elif op in CONV_KERNELS:
                    if src not in relu:
                        relu[src] = F.relu(nodes[src])
                    w = weights[(position, k)].to(x.dtype)
                    y = bn(F.conv2d(relu[src], w, padding=w.shape[-1] // 2))
                if y is not None:
                    total = y if total is None else total + y
                k += 1
            nodes.append(torch.zeros_like(x) if total is None else total)  # every edge into it is `none`
        return nodes[-1]

    def reduce(self, x: torch.Tensor, stage: int) -> torch.Tensor:
        conv_a, conv_b, shortcut = self.reductions[3 * (stage - 1):3 * stage]
        y = bn(F.conv2d(F.relu(x), conv_a, stride=2, padding=1))
        y = bn(F.conv2d(F.relu(y), conv_b, padding=1))
        return F.conv2d(F.avg_pool2d(x, 2, 2), shortcut) + y

    def forward(self, x: torch.Tensor, arch: Arch, weights: dict) -> torch.Tensor:
        ops = edge_ops(arch)
        x = bn(F.conv2d(x, self.stem, padding=1))
        for position in range(self.layout.positions):
            stage = self.layout.stage(position)
            if stage > 0 and position % self.layout.cells_per_stage == 0:
                x = self.reduce(x, stage)
            x = self.cell(x, ops, position, weights)
        return self.fc(F.relu(bn(x)).mean((2, 3)))
