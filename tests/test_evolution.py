"""Regularized evolution: one-change mutations in every space that defines one, aging selection that improves on
its random start (measured on a table), and a clear error on a space without a mutation."""

from __future__ import annotations

import random
from collections import Counter

import pandas as pd
import pytest

from nascli.spaces import get_space
from nascli.spaces.base import mutable_spaces
from tests.test_pnas import _nb201_table


def _edges(arch) -> dict[tuple[str, int], Counter]:
    """(cell type, node) -> multiset of (op, input) edges, whatever the space's genotype layout."""
    genotype = arch.genotype
    cells = {"cell": genotype["cell"]} if "cell" in genotype else {
        k: v for k, v in genotype.items() if not k.endswith("_concat")}
    return {(t, i): Counter(map(tuple, node)) for t, nodes in cells.items() for i, node in enumerate(nodes)}


@pytest.mark.parametrize("name", mutable_spaces())
def test_a_mutation_changes_one_edge(name):
    space = get_space(name)
    rng = random.Random(0)
    for _ in range(40):
        parent = space.sample(rng)
        child = space.mutate(parent, rng)
        assert child.arch_id != parent.arch_id
        before, after = _edges(parent), _edges(child)
        changed = [k for k in before if before[k] != after.get(k)]
        assert len(changed) == 1, (space.describe(parent), space.describe(child))
        removed, added = before[changed[0]] - after[changed[0]], after[changed[0]] - before[changed[0]]
        # one edge swapped for another (in darts a `none` edge is absent, so a removal alone also counts)
        assert sum(removed.values()) == 1 and sum(added.values()) <= 1


def test_evolution_on_a_table_improves_on_its_random_start(cli, run_root, tmp_path):
    _nb201_table(tmp_path / "t.csv")  # conv-heavy cells are better, plus noise
    res = cli("search", "strategy=evolution", "space=nb201", "strategy.evaluator=table", "strategy.evaluations=60",
              "strategy.population=10", "strategy.sample=3", f"benchmark.table={tmp_path / 't.csv'}",
              "benchmark.metric=acc", "benchmark.fitness=acc", "dataset=digits", "--run-root", run_root)
    assert res.exit_code == 0, res.output
    run = next((run_root / "search").iterdir())
    archs = pd.read_csv(run / "archs.csv")
    assert archs["evaluation"].tolist() == list(range(1, 61))
    assert (archs["generation"] == "initial").sum() == 10
    children = archs[archs["generation"] == "mutation"]
    # every child's parent was evaluated before it
    position = archs.groupby("arch_id")["evaluation"].min().to_dict()  # an architecture may come back
    assert all(position[p] < e for p, e in zip(children["parent"], children["evaluation"], strict=True))
    initial = archs[archs["generation"] == "initial"]["score"].mean()
    assert archs["score"].iloc[-20:].mean() > initial + 3  # selection, not drift: measured +7.0 (seed 0)
    assert archs["score"].max() > archs[archs["generation"] == "initial"]["score"].max()
    assert archs["score"].max() == archs["bench_acc"].max()


def test_evolution_refuses_a_space_without_mutation(cli, run_root):
    res = cli("search", "strategy=evolution", "space=membank", "dataset=digits", "--run-root", run_root)
    assert res.exit_code == 2
    assert "defines no mutation" in res.stderr and "nb201" in res.stderr
