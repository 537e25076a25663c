"""The DARTS / SNAS cell space: 8 ops on the 14 edges of a 4-node cell, normal and reduce cells."""

from __future__ import annotations

import random

from nascli.spaces.base import register_space
from nascli.spaces.cell_space import CellSpace, CellSpaceConfig
from nascli.spaces.presets import DARTS_FAMILY

DARTS_OPS = (
    "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)


@register_space("darts")
class DartsSpace(CellSpace):
    name = "darts"
    Config = CellSpaceConfig
    ops = DARTS_OPS
    presets = DARTS_FAMILY

    def sample(self, rng: random.Random):
        """DARTS's derived-cell distribution: per node two distinct inputs, non-`none` ops."""
        live_ops = [op for op in self.ops if op != "none"]
        genotype = {}
        for cell_type in self.cell_types:
            nodes = []
            for i in range(self.num_nodes):
                inputs = rng.sample(range(i + 2), 2)
                nodes.append([[rng.choice(live_ops), src] for src in inputs])
            genotype[cell_type] = nodes
            genotype[f"{cell_type}_concat"] = list(range(2, self.num_nodes + 2))
        return self.make(genotype)
