"""Every registered strategy, through the same checks: a new strategy is tested by registering it.

For each: a smoke-budget search on digits (and one strategy at the default cpu budget) (the budget must shrink it to seconds), its saved state restored
into a fresh strategy object scores architectures exactly as `nas rank RUN` does, and a state_dict round
trip changes nothing.
"""

from __future__ import annotations

import json

import pytest

from nascli.data import load_splits
from nascli.device import resolve, seed_everything
from nascli.rundir import RunDir, load_checkpoint
from nascli.spaces import get_space
from nascli.strategies.base import STRATEGIES, SearchContext, load_strategy_plugins, strategy_class
from tests.conftest import run_of

load_strategy_plugins()


# smoke for every strategy; the default cpu budget for the cheapest one (random search at the cpu budget's
# epochs, batch and network, with 1 of its 16 candidates: the full preset takes about a minute)
CASES = [(name, "smoke") for name in sorted(STRATEGIES)] + [("random", "cpu")]


@pytest.mark.parametrize("name,budget", CASES)
def test_strategy_search_state_round_trip_and_rank(name, budget, cli, run_root):
    fewer = ["budget.candidates=1"] if budget == "cpu" else []
    res = cli("search", f"strategy={name}", f"budget={budget}", *fewer, "dataset=digits", "--run-root", run_root)
    assert res.exit_code == 0, res.output
    run = RunDir.open(run_of(res))
    manifest = json.loads((run.path / RunDir.MANIFEST).read_text())
    assert manifest["status"] == "done" and manifest["summary"]["failed"] < manifest["summary"]["candidates"]
    ranked = run.read_frame(RunDir.RANKED)
    assert len(ranked) >= 1 and ranked["score"].notna().all()

    estimator = strategy_class(name).estimator
    if budget == "smoke" and estimator is not None:  # `nas rank RUN`: the run's own estimator, from strategy.pt
        res = cli("rank", run.path, "--run-root", run_root)
        assert res.exit_code == 0, res.output
        rank_scores = RunDir.open(run_of(res)).read_frame(RunDir.ARCHS).set_index("arch_id")[f"strategy_{name}"]
    else:  # a strategy whose score() trains every architecture has no score of its own to rank with
        if estimator is None:
            res = cli("rank", run.path, "--run-root", run_root)
            assert res.exit_code == 2 and "has no score of its own" in res.stderr and "proxy=" in res.stderr
            assert not (run_root / "rank").exists()
        # its score() must still reproduce its search scores
        rank_scores = ranked.set_index("arch_id")["score"]

    # the same state restored here, and round-tripped through state_dict, scores the same
    cfg = run.config
    blob = load_checkpoint(run.checkpoint(RunDir.STRATEGY_CKPT))
    assert blob["kind"] == "strategy" and blob["strategy"] == name
    first = strategy_class(name)(cfg.strategy)
    first.load_state_dict(blob["state"])
    second = strategy_class(name)(cfg.strategy)
    second.load_state_dict(first.state_dict())
    space = get_space(cfg.space.name, cfg.space)
    archs = [get_space(cfg.space.name).make(json.loads((run.arch_file(a)).read_text())["genotype"])
             for a in list(rank_scores.index)[:2]]
    expected = [rank_scores[a.arch_id] for a in archs]
    splits = load_splits(cfg.dataset)
    # the precision the search ran in (device.amp / channels_last = auto choose by workload, data and space)
    runtime = resolve(cfg.device, strategy_class(name).workload, splits.shape, space.name)
    assert runtime.record()["amp"] == run.manifest["precision"]["amp"]
    for strategy in (first, second):
        ctx = SearchContext(cfg, space, splits, runtime, seed_everything(int(cfg.seed)))
        assert strategy.score(archs, ctx) == pytest.approx(expected, rel=1e-6), name  # archs.csv keeps ~15 digits
