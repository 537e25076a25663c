"""How PNAS grows cells: the level-1 cells, one-step expansions, predictor tokens (`strategy.growth`).

blocks (pnas space): level b = cells of b blocks; a block is an unordered pair of (op, input) with
inputs from the two previous cells and the earlier blocks, so |B_1| = 136 distinct blocks and
a level-(b-1) cell expands into n(n+1)/2 cells, n = 8(b+1).
nodes (nb201, the default there): PNAS's blocks are NB201's nodes. A block is a node's incoming edges;
the level-b cell is the complete network whose output is node b, the later nodes passing it through
by a skip edge (node j <- node j-1), so every cell of every level is a real NB201 cell and none is
disconnected: level 1 = the 4 live ops of node 1, level 2 adds node 2 (24 choices: not both `none`),
level 3 adds node 3, the output (124 choices). Cells whose node 1 is `none` are not reached
(7 of the 157 top-1% cells on CIFAR-10).
edges (nb201): level b = cells with b live (non-`none`) edges; one step turns one `none` edge
into one of the 4 other ops. Its small cells are mostly disconnected (measured: 83% at b=1).
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod

from nascli.arch import Arch
from nascli.errors import UserError
from nascli.registry import load_plugins, registrar
from nascli.strategies.pnas.predictor import Tokens

# How PNAS grows cells, keyed by growth name; a third-party space adds its growth through the
# `nascli.pnas_growths` entry-point group, as strategies are added.
GROWTHS: dict[str, type[Growth]] = {}
register_growth = registrar(GROWTHS)


class Growth(ABC):
    space_name: str  # the space this growth grows
    default: bool = False  # the growth `strategy.growth=auto` picks for its space
    predictor: str = "lstm"  # the predictor `strategy.predictor.kind=auto` picks for this growth

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


@register_growth("blocks")
class BlockGrowth(Growth):
    space_name = "pnas"
    default = True

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


@register_growth("edges")
class EdgeGrowth(Growth):
    space_name = "nb201"
    predictor = "mlp"  # measured on the NB201 table (bench/pnas_efficiency.json): the LSTM never hit the top 1%
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


@register_growth("nodes")
class NodeGrowth(EdgeGrowth):
    """NB201 nodes as PNAS blocks (module docstring). Tokens: one (edge, op) pair per incoming edge of nodes
    1..b, `none` included (a choice like any other), in node order; so the LSTM reads 1, 3, 6 pairs at levels
    1, 2, 3 and has to generalise to longer cells, as PNAS's LSTM does."""

    space_name = "nb201"
    default = True
    predictor = "mlp"  # measured: first top-1% cell at 14.1 evaluations (K=8) vs 19.9 for the LSTM
    NODES = 3
    PASS = "skip_connect"

    def __init__(self, space):
        super().__init__(space)
        self.max_level = self.NODES
        self._choices = {b: [c for c in itertools.product(space.ops, repeat=b) if any(op != "none" for op in c)]
                         for b in range(1, self.NODES + 1)}

    def _cell(self, nodes: list[tuple[str, ...]]) -> Arch:
        """Nodes 1..b as given, then each later node passes the previous one through."""
        cell = [[[op, j] for j, op in enumerate(ops)] for ops in nodes]
        for node in range(len(nodes) + 1, self.NODES + 1):
            cell.append([["none", j] for j in range(node - 1)] + [[self.PASS, node - 1]])
        return self.space.make({"cell": cell})

    def _nodes(self, arch: Arch) -> list[tuple[str, ...]]:
        """The nodes this cell grew (a trailing pass-through node is not a block of its own)."""
        nodes = [tuple(op for op, _ in node) for node in arch.genotype["cell"]]
        while len(nodes) > 1 and nodes[-1] == ("none",) * (len(nodes) - 1) + (self.PASS,):
            nodes.pop()
        return nodes

    def level1(self) -> list[Arch]:
        return [self._cell([c]) for c in self._choices[1]]

    def expand(self, arch: Arch) -> list[Arch]:
        nodes = self._nodes(arch)
        b = len(nodes) + 1
        if b > self.max_level:
            return []
        # The choice that passes node b-1 through again is the parent itself, not a new cell.
        children = (self._cell([*nodes, c]) for c in self._choices[b])
        return [c for c in children if c.arch_id != arch.arch_id]

    def tokens(self, arch: Arch) -> Tokens:
        out, edge = [], 0
        for ops in self._nodes(arch):
            for op in ops:
                out.append((edge, self._op_index[op]))
                edge += 1
        return out

    def level(self, arch: Arch) -> int:
        return len(self._nodes(arch))


def growth_names(space_name: str) -> list[str]:
    load_plugins("nascli.pnas_growths", ("nascli.strategies.pnas.growth",))
    return sorted(name for name, cls in GROWTHS.items() if cls.space_name == space_name)


def growth_for(space, name: str = "auto") -> Growth:
    """The growth `strategy.growth` names for `space` (auto: the space's default)."""
    names = growth_names(space.name)
    if not names:
        raise UserError(f"pnas grows cells of the spaces {', '.join(sorted({c.space_name for c in GROWTHS.values()}))}"
                        f", not '{space.name}'")
    if name == "auto":
        name = next((n for n in names if GROWTHS[n].default), names[0])
    if name not in names:
        raise UserError(f"strategy.growth={name} does not grow {space.name} cells; use one of: auto, "
                        f"{', '.join(names)}")
    return GROWTHS[name](space)
