"""PNAS: block de-duplication, expansion counts, the predictor, the table evaluator, the CLI."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nascli.spaces import get_space
from nascli.strategies.pnas.growth import growth_for
from nascli.strategies.pnas.predictor import Ensemble, PredictorConfig
from tests.conftest import TINY


def test_level_one_blocks_are_deduplicated():
    space = get_space("pnas")
    growth = growth_for(space)
    cells = growth.level1()
    # 8 ops x 2 inputs = 16 (op, input) sides; unordered pairs with repetition: 16*17/2.
    assert len(cells) == 136 == len({c.arch_id for c in cells})
    a = space.make(space.cell([[("sep_conv_3x3", 0), ("max_pool_3x3", 1)]]))
    b = space.make(space.cell([[("max_pool_3x3", 1), ("sep_conv_3x3", 0)]]))
    assert a.arch_id == b.arch_id  # a block is unordered


@pytest.mark.parametrize("b", [2, 3, 4])
def test_expansion_counts_follow_the_block_formula(b):
    space = get_space("pnas")
    growth = growth_for(space)
    rng = random.Random(b)
    parent = space.make(space.cell([list(rng.choice(space.block_choices(i))) for i in range(1, b)]))
    n = 8 * (b + 1)  # (op, input) sides for block b: 8 ops x (b + 1) inputs
    children = growth.expand(parent)
    assert len(children) == n * (n + 1) // 2 == len({c.arch_id for c in children})
    assert all(growth.level(c) == b for c in children)
    # ordered count |B_b| = (b+1)^2 * 64 from the paper: every ordered block maps onto an unordered one
    assert (b + 1) ** 2 * 64 == n * n


def test_nb201_edge_growth_adds_one_live_edge():
    space = get_space("nb201")
    growth = growth_for(space, "edges")
    level1 = growth.level1()
    assert len(level1) == 6 * 4
    children = growth.expand(level1[0])
    assert len(children) == 5 * 4 and all(growth.level(c) == 2 for c in children)


def _reaches_output(space, arch) -> bool:
    """Whether some path of live edges joins the cell's input (node 0) to its output (node 3)."""
    live = {0}
    for node, edges in enumerate(arch.genotype["cell"], start=1):
        if any(op != "none" and src in live for op, src in edges):
            live.add(node)
    return 3 in live


def test_nb201_node_growth_grows_complete_networks_node_by_node():
    space = get_space("nb201")
    growth = growth_for(space)  # the default for nb201
    assert type(growth).__name__ == "NodeGrowth"
    level1 = growth.level1()
    assert len(level1) == 4  # node 1's live ops
    level2 = growth.expand(level1[2])
    assert len(level2) == 24 - 1  # node 2's 24 connected choices, less the one that is the parent again
    level3 = growth.expand(level2[10])
    assert len(level3) == 124 - 1 and growth.expand(level3[0]) == []
    for level, cells in ((1, level1), (2, level2), (3, level3)):
        assert len({c.arch_id for c in cells}) == len(cells)
        assert all(growth.level(c) == level for c in cells)
        assert all(_reaches_output(space, c) for c in cells)  # never disconnected by construction
        # The predictor reads one (edge, op) pair per incoming edge of nodes 1..b: 1, 3, 6 pairs.
        assert all(len(growth.tokens(c)) == level * (level + 1) // 2 for c in cells)
    # A level-1 cell is node 1 passed through by skips: the table entry "op, then identity".
    assert space.edge_ops(level1[0])[2] == "skip_connect" and space.edge_ops(level1[0])[5] == "skip_connect"
    # Every level-3 cell of a level-2 parent keeps the parent's nodes 1 and 2.
    assert all(space.edge_ops(c)[:3] == space.edge_ops(level2[10])[:3] for c in level3)


def _synthetic(space, growth, n, seed):
    rng = random.Random(seed)
    cells = [space.sample(rng, blocks=rng.randint(1, 3)) for _ in range(n)]
    # A monotone target: more convolution tokens -> higher "accuracy".
    convs = np.array([sum(op.startswith(("sep", "dil", "conv")) for node in c.genotype["normal"] for op, _ in node)
                      for c in cells], dtype=float)
    target = 0.3 + 0.1 * convs + 0.01 * np.array([growth.level(c) for c in cells])
    return cells, target


@pytest.mark.parametrize("kind", ["lstm", "mlp"])
def test_predictor_fit_lowers_loss_and_ranks_a_monotone_target(kind):
    space = get_space("pnas")
    growth = growth_for(space)
    cells, target = _synthetic(space, growth, 120, 0)
    ens = Ensemble(PredictorConfig(kind=kind, members=3, hidden=32, embedding=16, epochs=40), growth.n_inputs,
                   growth.n_ops, seed=0)
    loss = ens.fit([growth.tokens(c) for c in cells], target.tolist())
    assert loss["l1_after"] < 0.5 * loss["l1_before"]
    held, held_target = _synthetic(space, growth, 60, 1)
    mean, spread = ens.predict([growth.tokens(c) for c in held])
    assert stats.spearmanr(mean, held_target).statistic > 0.8
    assert spread.shape == mean.shape and (spread >= 0).all()


def _nb201_table(path, seed=0):
    space = get_space("nb201")
    rows = []
    import itertools

    for ops in itertools.product(space.ops, repeat=6):
        cell = [[[ops[0], 0]], [[ops[1], 0], [ops[2], 1]], [[ops[3], 0], [ops[4], 1], [ops[5], 2]]]
        arch = space.make({"cell": cell})
        # Synthetic truth: conv-heavy cells are better, plus seeded noise.
        score = 60 + 5 * sum(o == "nor_conv_3x3" for o in ops) + 2 * sum(o == "nor_conv_1x1" for o in ops)
        # A str seeds the same noise in every process (hash() of a tuple of str changes with PYTHONHASHSEED).
        rows.append({"arch_str": space.arch_str(arch), "acc": score + random.Random(",".join(ops)).random()})
    pd.DataFrame(rows).to_csv(path, index=False)
    return pd.DataFrame(rows).set_index("arch_str")


def _table_search(cli, run_root, tmp_path, *extra):
    """A PNAS search of the synthetic table at tmp_path/t.csv: (run dir, archs.csv, level records)."""
    res = cli("search", "strategy=pnas", "space=nb201", "strategy.evaluator=table", "strategy.beam=4",
              "strategy.predictor.members=2", "strategy.predictor.epochs=20", f"benchmark.table={tmp_path / 't.csv'}",
              "benchmark.metric=acc", "benchmark.fitness=acc", "dataset=digits", *extra, "--run-root", run_root)
    assert res.exit_code == 0, res.output
    run = next((run_root / "search").iterdir())
    levels = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
              if json.loads(line).get("event") == "level"]
    return run, pd.read_csv(run / "archs.csv"), levels


def test_table_evaluator_matches_the_csv_and_the_search_grows(cli, run_root, tmp_path):
    table = _nb201_table(tmp_path / "t.csv")
    run, archs, levels = _table_search(cli, run_root, tmp_path, "strategy.levels=4", "strategy.growth=edges")
    assert len(archs) == 24 + 3 * 4  # all level-1 cells, then K per level
    for _, row in archs.iterrows():
        arch = json.loads((run / "archs" / f"{row['arch_id']}.json").read_text())
        arch_str = get_space("nb201").arch_str(get_space("nb201").make(arch["genotype"]))
        assert row["score"] == pytest.approx(table.loc[arch_str, "acc"])
    assert [r["level"] for r in levels] == [1, 2, 3, 4]
    assert all(r["predictor_train"]["spearman"] is not None for r in levels)
    assert levels[-1]["evaluations"] == len(archs)
    assert (run / "plots" / "predicted_vs_true.png").is_file() and (run / "levels" / "level_4.csv").is_file()
    # The predictor, not luck: level-4 cells beat the average level-1 cell on this conv-loving table.
    assert archs[archs["level"] == 4]["score"].mean() > archs[archs["level"] == 1]["score"].mean() + 5


def test_node_growth_on_the_table_evaluates_in_order_then_goes_on_in_rounds(cli, run_root, tmp_path):
    _nb201_table(tmp_path / "t.csv")
    run, archs, levels = _table_search(cli, run_root, tmp_path, "strategy.rounds=2")
    assert len(archs) == 4 + 4 + 4 + 2 * 4  # level 1, K at levels 2 and 3, then 2 rounds of K at level 3
    assert archs["evaluation"].tolist() == list(range(1, len(archs) + 1))  # archs.csv is in evaluation order
    assert archs["level"].tolist() == [1] * 4 + [2] * 4 + [3] * 12
    truth = archs["bench_acc"].to_numpy()
    assert np.allclose(archs["score"], truth)  # the table's accuracy, beside the score
    assert [(r["level"], r["round"]) for r in levels] == [(1, 0), (2, 0), (3, 0), (3, 1), (3, 2)]
    # Extrapolation over every expansion the table scores, not only the K picked.
    assert levels[1]["predictor_extrapolation_all"]["n"] == levels[1]["expansions"] == 4 * 23
    assert (run / "levels" / "level_3_round_2.csv").is_file()
    assert archs[archs["level"] == 3]["score"].mean() > archs[archs["level"] == 1]["score"].mean() + 5


def test_pnas_train_evaluator_cli_and_retrain(cli, run_root):
    res = cli("search", "strategy=pnas", "space=nb201", "strategy.levels=2", "strategy.beam=2",
              "space.search.channels=4", "strategy.predictor.members=2", "strategy.predictor.epochs=10",
              "strategy.max_evaluations=null",  # budget=smoke would stop inside level 1
              *[t for t in TINY if not t.startswith("space.")], "--run-root", run_root)
    assert res.exit_code == 0, res.output
    run = next((run_root / "search").iterdir())
    assert len(pd.read_csv(run / "archs.csv")) == 4 + 2  # node growth: node 1's 4 live ops, then K
    res = cli("retrain", run / "arch.json", "budget=smoke", "space.retrain.channels=4",
              "space.retrain.cells_per_stage=1", "--run-root", run_root)
    assert res.exit_code == 0, res.output
    res = cli("rank", run, "--run-root", run_root)  # score(): the predictor's mean, and its spread beside it
    assert res.exit_code == 0, res.output
    ranked = pd.read_csv(next((run_root / "rank").iterdir()) / "ranked.csv")
    assert len(ranked) == 6 and ranked["strategy_pnas"].between(0, 100).all()
    assert (ranked["strategy_pnas_spread"] >= 0).all() and ranked["strategy_pnas_spread"].gt(0).any()


def test_table_evaluator_without_a_table_is_a_user_error(cli, run_root):
    res = cli("search", "strategy=pnas", "space=nb201", "strategy.evaluator=table", "--run-root", run_root)
    assert res.exit_code == 2 and "benchmark.table" in res.stderr
    res = cli("search", "strategy=pnas", "space=darts", "--run-root", run_root)
    assert res.exit_code == 2 and "pnas" in res.stderr
