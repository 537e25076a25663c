"""How PNAS grows cells, per space: the level-1 cells, one-step expansions, predictor tokens.

pnas space: level b = cells of b blocks; a block is an unordered pair of (op, input) with
inputs from the two previous cells and the earlier blocks, so |B_1| = 136 distinct blocks and
a level-(b-1) cell expands into n(n+1)/2 cells, n = 8(b+1).
nb201 space: level b = cells with b live (non-`none`) edges; one step turns one `none` edge
into one of the 4 other ops.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from nascli.arch import Arch
from nascli.errors import UserError
from nascli.registry import load_plugins, registrar
from nascli.strategies.pnas.predictor import Tokens

# How PNAS grows cells of each space, keyed by space name; a third-party space adds its growth through
# the `nascli.pnas_growths` entry-point group, as strategies are added.
GROWTHS: dict[str, type[Growth]] = {}
register_growth = registrar(GROWTHS)


class Growth(ABC):
    def __init__(self, space):
        self.space = space

    max_level: int
    n_inputs: int
    n_ops: int

    @abstractmethod
    def level1(self) -> list[Arch]:
        """Every distinct level-1 cell."""

    @abstractmethod
    def expand(self, arch: Arch) -> list[Arch]:
        """Every distinct cell one level up that contains `arch`."""

    @abstractmethod
    def tokens(self, arch: Arch) -> Tokens:
        """(input, op) token pairs the predictor reads."""

    @abstractmethod
    def level(self, arch: Arch) -> int: ...


@register_growth("pnas")
class BlockGrowth(Growth):
    def __init__(self, space):
        super().__init__(space)
        self.max_level = space.num_nodes
        self.n_inputs = space.num_nodes + 1  # two cell inputs + blocks 1..B-1
        self.n_ops = len(space.ops)
        self._op_index = {op: i for i, op in enumerate(space.ops)}

    def blocks(self, arch: Arch) -> list:
        return [[tuple(e) for e in node] for node in arch.genotype["normal"]]

    def level1(self) -> list[Arch]:
        return [self.space.make(self.space.cell([block])) for block in self.space.block_choices(1)]

    def expand(self, arch: Arch) -> list[Arch]:
        blocks = self.blocks(arch)
        b = len(blocks) + 1
        if b > self.max_level:
            return []
        out: dict[str, Arch] = {}
        for block in self.space.block_choices(b):
            child = self.space.make(self.space.cell([*blocks, list(block)]))
            out.setdefault(child.arch_id, child)
        return list(out.values())

    def tokens(self, arch: Arch) -> Tokens:
        return [(int(src), self._op_index[op]) for node in arch.genotype["normal"] for op, src in node]

    def level(self, arch: Arch) -> int:
        return len(arch.genotype["normal"])


@register_growth("nb201")
class EdgeGrowth(Growth):
    EDGES = 6

    def __init__(self, space):
        super().__init__(space)
        self.max_level = self.EDGES
        self.n_inputs = self.EDGES  # the token's "input" is the edge position
        self.n_ops = len(space.ops)
        self.live_ops = [op for op in space.ops if op != "none"]
        self._op_index = {op: i for i, op in enumerate(space.ops)}

    def _make(self, ops: list[str]) -> Arch:
        cell, k = [], 0
        for node in range(1, 4):
            cell.append([[ops[k + j], j] for j in range(node)])
            k += node
        return self.space.make({"cell": cell})

    def level1(self) -> list[Arch]:
        return [self._make(["none"] * e + [op] + ["none"] * (self.EDGES - e - 1))
                for e in range(self.EDGES) for op in self.live_ops]

    def expand(self, arch: Arch) -> list[Arch]:
        ops = self.space.edge_ops(arch)
        return [self._make(ops[:e] + [op] + ops[e + 1:]) for e in range(self.EDGES) if ops[e] == "none"
                for op in self.live_ops]

    def tokens(self, arch: Arch) -> Tokens:
        return [(e, self._op_index[op]) for e, op in enumerate(self.space.edge_ops(arch)) if op != "none"]

    def level(self, arch: Arch) -> int:
        return sum(op != "none" for op in self.space.edge_ops(arch))


def growth_for(space) -> Growth:
    load_plugins("nascli.pnas_growths", ("nascli.strategies.pnas.growth",))
    if space.name not in GROWTHS:
        raise UserError(f"pnas grows cells of the spaces {', '.join(sorted(GROWTHS))}, not '{space.name}'")
    return GROWTHS[space.name](space)
