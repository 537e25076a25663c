"""What the darts and pnas spaces share: the cell genotype format and its validation.

Canonical form: `none` edges dropped (an edge that outputs zero adds nothing), edges
of a node sorted (sum is commutative), concat sorted. Equal networks get equal arch_ids.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from typing import Any

from nascli.errors import UserError
from nascli.spaces.base import DataShape, SearchSpace, expect
from nascli.spaces.cell_network import CellNetwork
from nascli.spaces.ops import make_op


@dataclass
class CellNetConfig:
    channels: int = 16
    layers: int = 8
    stem_multiplier: int = 3


def search_net() -> CellNetConfig:
    return CellNetConfig(channels=8, layers=5)


def retrain_net() -> CellNetConfig:
    return CellNetConfig(channels=16, layers=8)


@dataclass
class CellSpaceConfig:
    name: str = "darts"
    nodes: int = 4
    search: CellNetConfig = field(default_factory=search_net)
    retrain: CellNetConfig = field(default_factory=retrain_net)


class CellSpace(SearchSpace):
    """Cells of `nodes` intermediate nodes over two cell inputs; subclasses set the rules."""

    cell_types: tuple[str, ...] = ("normal", "reduce")
    required_cell_types: tuple[str, ...] = ("normal", "reduce")
    # Two edges per node in a block-structured space (PNAS); None = any in-degree.
    edges_per_node: int | None = None
    # Whether a node may take the same input twice (PNAS blocks may; DARTS edges are unique).
    allow_repeated_input: bool = False

    @property
    def num_nodes(self) -> int:
        return int(self.cfg.nodes)

    def canonicalize(self, genotype: Any) -> dict:
        expect(isinstance(genotype, dict), f"a {self.name} genotype must be an object with keys "
               f"{', '.join(self.required_cell_types)}; see `nas retrain --help` for the format")
        allowed = set(self.cell_types) | {f"{t}_concat" for t in self.cell_types}
        unknown = sorted(set(genotype) - allowed)
        expect(not unknown, f"unknown genotype key(s) {unknown} for space {self.name}; "
               f"allowed: {sorted(allowed)}")
        out: dict[str, Any] = {}
        for cell_type in self.cell_types:
            if cell_type not in genotype:
                expect(cell_type not in self.required_cell_types,
                       f"{self.name} genotype lacks '{cell_type}'; add the {cell_type} cell's nodes")
                continue
            nodes = self._nodes(genotype[cell_type], cell_type)
            out[cell_type] = nodes
            concat = genotype.get(f"{cell_type}_concat", list(range(2, len(nodes) + 2)))
            out[f"{cell_type}_concat"] = self._concat(concat, len(nodes), cell_type)
        return out

    def _nodes(self, raw: Any, cell_type: str) -> list:
        expect(isinstance(raw, list) and raw, f"'{cell_type}' must be a non-empty list of nodes")
        if all(_is_edge(e) for e in raw):
            raw = self._unflatten(raw, cell_type)
        expect(len(raw) <= self.num_nodes or self.edges_per_node is not None,
               f"'{cell_type}' has {len(raw)} nodes; the {self.name} space has {self.num_nodes}")
        if self.edges_per_node is None:
            expect(len(raw) == self.num_nodes,
                   f"'{cell_type}' has {len(raw)} nodes; the {self.name} space has {self.num_nodes}")
        else:
            expect(1 <= len(raw) <= self.num_nodes,
                   f"'{cell_type}' has {len(raw)} blocks; the {self.name} space allows 1 to {self.num_nodes}")
        nodes = []
        for i, node in enumerate(raw):
            where = f"{cell_type} node {i + 2}"
            expect(isinstance(node, list), f"{where} must be a list of [op, input] edges")
            if self.edges_per_node is not None:
                expect(len(node) == self.edges_per_node,
                       f"{where} has {len(node)} edges; {self.name} blocks have exactly {self.edges_per_node}")
            edges = []
            for edge in node:
                expect(_is_edge(edge), f"{where}: edge {edge!r} is not an [op, input] pair")
                op, src = edge[0], int(edge[1])
                expect(op in self.ops, f"unknown op '{op}' in {where}; {self.name} ops are: {', '.join(self.ops)}")
                expect(0 <= src < i + 2, f"{where}: input {src} is out of range 0..{i + 1}")
                if op != "none":
                    edges.append([op, src])
            inputs = [s for _, s in edges]
            if not self.allow_repeated_input:
                expect(len(set(inputs)) == len(inputs),
                       f"{where} takes input {inputs} more than once; each input feeds one edge in {self.name}")
            nodes.append(sorted(edges, key=lambda e: (e[1], e[0])))
        return nodes

    def mutate(self, arch, rng: random.Random):
        """Real et al. (2019)'s two mutations, one at a time: a random edge of a random node of a random cell
        gets another op, or another input (a hidden-state mutation), whichever is drawn."""
        for _ in range(1000):
            genotype = copy.deepcopy(arch.genotype)
            cell_type = rng.choice([t for t in self.cell_types if t in genotype])
            nodes = genotype[cell_type]
            i = rng.randrange(len(nodes))
            if not nodes[i]:
                continue  # a node whose edges were all `none`
            e = rng.randrange(len(nodes[i]))
            op, src = nodes[i][e]
            if rng.random() < 0.5:
                nodes[i][e] = [rng.choice([o for o in self.ops if o not in ("none", op)]), src]
            else:
                nodes[i][e] = [op, rng.choice([j for j in range(i + 2) if j != src])]
            try:
                child = self.make(genotype)
            except UserError:
                continue  # e.g. the new input already feeds this node where inputs must be distinct
            if child.arch_id != arch.arch_id:
                return child
        raise RuntimeError(f"no mutation of {arch.arch_id} found in 1000 draws")

    def _unflatten(self, edges: list, cell_type: str) -> list:
        """Accept the flat edge lists of the papers' genotype files."""
        n = self.num_nodes
        per = self.edges_per_node or 2
        if len(edges) % per == 0 and len(edges) // per <= n:
            return [edges[i : i + per] for i in range(0, len(edges), per)]
        if self.edges_per_node is None and len(edges) == n * (n + 3) // 2:
            # SNAS edge_all: node i has one edge from every earlier state (2, 3, 4, 5 ...).
            nodes, k = [], 0
            for i in range(n):
                nodes.append(edges[k : k + i + 2])
                k += i + 2
            return nodes
        raise UserError(f"'{cell_type}' is a flat list of {len(edges)} edges, which does not split into "
                        f"{n} nodes; give a list of nodes, each a list of [op, input] edges")

    def _concat(self, concat: Any, num_nodes: int, cell_type: str) -> list[int]:
        expect(isinstance(concat, list) and concat and all(isinstance(i, int) for i in concat),
               f"'{cell_type}_concat' must be a non-empty list of node indices")
        expect(all(2 <= i < num_nodes + 2 for i in concat),
               f"'{cell_type}_concat' {concat} must index nodes 2..{num_nodes + 1}")
        return sorted(set(concat))

    def op_module(self, name: str, c: int, stride: int):
        return make_op(name, c, stride)

    def build(self, arch, shape: DataShape, net, auxiliary: bool = False):
        return CellNetwork(arch.genotype, shape.channels, shape.num_classes, int(net.channels),
                           int(net.layers), int(net.stem_multiplier), auxiliary=auxiliary)

    def describe(self, arch) -> str:
        parts = []
        for cell_type in self.cell_types:
            if cell_type in arch.genotype:
                edges = sum(len(n) for n in arch.genotype[cell_type])
                free = sum(op in _PARAM_FREE for n in arch.genotype[cell_type] for op, _ in n)
                parts.append(f"{cell_type[0]}:{edges}e/{free}pf")
        return " ".join(parts)


_PARAM_FREE = {"skip_connect", "avg_pool_3x3", "max_pool_3x3"}


def _is_edge(e: Any) -> bool:
    return isinstance(e, (list, tuple)) and len(e) == 2 and isinstance(e[0], str) and isinstance(e[1], int) \
        and not isinstance(e[1], bool)
