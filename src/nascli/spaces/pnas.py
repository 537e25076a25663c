"""The PNAS cell space: a cell of B blocks; a block adds two ops applied to two inputs.

Inputs of block b are the two previous cells and blocks 1..b-1. One cell type, run with
stride 2 where the network reduces; the output concatenates every block. A block is
unordered ((I1, O1, I2, O2) == (I2, O2, I1, O1)), so the canonical form sorts its edges.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from nascli.spaces.base import register_space
from nascli.spaces.cell_space import CellNetConfig, CellSpace
from nascli.spaces.presets import PNAS_FAMILY

PNAS_OPS = (
    "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7", "conv_7x1_1x7",
    "skip_connect", "avg_pool_3x3", "max_pool_3x3", "dil_conv_3x3",
)


@dataclass
class PnasSpaceConfig:
    name: str = "pnas"
    nodes: int = 5  # B, the most blocks a cell may have
    search: CellNetConfig = field(default_factory=lambda: CellNetConfig(channels=8, layers=5))
    retrain: CellNetConfig = field(default_factory=lambda: CellNetConfig(channels=16, layers=8))


@register_space("pnas")
class PnasSpace(CellSpace):
    name = "pnas"
    Config = PnasSpaceConfig
    ops = PNAS_OPS
    presets = PNAS_FAMILY
    # NASNet and AmoebaNet presets carry their own reduction cell; PNAS cells do not.
    required_cell_types = ("normal",)
    edges_per_node = 2
    allow_repeated_input = True

    def block_choices(self, b: int) -> list[tuple[tuple[str, int], tuple[str, int]]]:
        """All distinct (unordered) blocks for block index b (1-based): n(n+1)/2, n = 8(b+1)."""
        sides = [(op, src) for src in range(b + 1) for op in self.ops]
        return [(sides[i], sides[j]) for i in range(len(sides)) for j in range(i, len(sides))]

    def cell(self, blocks) -> dict:
        """A canonical genotype from a list of blocks ((op, in), (op, in))."""
        nodes = [[list(e) for e in block] for block in blocks]
        return self.canonicalize({"normal": nodes})

    def sample(self, rng: random.Random, blocks: int | None = None):
        """A cell of `blocks` blocks (default B), each drawn uniformly over ordered edges."""
        blocks = blocks or self.num_nodes
        nodes = [[[rng.choice(self.ops), rng.randrange(b + 2)] for _ in range(2)] for b in range(blocks)]
        return self.make({"normal": nodes})
