"""Measured latency as a cost (proxy=latency) and the Pareto fronts of score vs cost in ranked.csv."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from nascli.config import compose
from nascli.latency import LatencySettings, measure_latency_ms
from nascli.proxies import PROXIES, load_proxies
from nascli.proxies.scoring import ScoringSetup, score_chunk
from nascli.results import pareto_front, rank_frame
from nascli.rundir import RunDir
from nascli.spaces import DataShape, get_space
from tests.conftest import run_of

load_proxies()
RGB = DataShape(3, 16, 16, 10)
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def _brute_front(score, cost):
    n = len(score)
    out = []
    for i in range(n):
        if np.isnan(score[i]) or np.isnan(cost[i]):
            out.append(False)
            continue
        dominated = any(
            not (np.isnan(score[j]) or np.isnan(cost[j])) and score[j] >= score[i] and cost[j] <= cost[i]
            and (score[j] > score[i] or cost[j] < cost[i]) for j in range(n))
        out.append(not dominated)
    return np.array(out)


def test_pareto_front_equals_the_definition_on_ties_and_nans():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(1, 30))
        score = rng.integers(0, 6, n).astype(float)  # few distinct values: many ties
        cost = rng.integers(0, 6, n).astype(float)
        score[rng.random(n) < 0.1] = np.nan
        np.testing.assert_array_equal(pareto_front(score, cost), _brute_front(score, cost))
    # by hand: two equal best rows are both on the front; a cheaper, worse row is too; a dearer, worse one not
    front = pareto_front(np.array([90.0, 90.0, 80.0, 85.0, 70.0]), np.array([10.0, 10.0, 5.0, 12.0, 5.0]))
    assert front.tolist() == [True, True, True, False, False]


def test_ranked_frame_marks_the_params_and_latency_fronts():
    frame = pd.DataFrame({"arch_id": list("abcd"), "status": "ok", "score": [0.9, 0.8, 0.7, 0.95],
                          "params": [100, 50, 60, 400], "latency": [3.0, 4.0, 1.0, 2.0]})
    ranked = rank_frame(frame).set_index("arch_id")
    assert ranked["pareto_params"].to_dict() == {"d": True, "a": True, "b": True, "c": False}
    assert ranked["pareto_latency"].to_dict() == {"d": True, "a": False, "b": False, "c": True}
    assert "pareto_latency" not in rank_frame(frame.drop(columns="latency")).columns


def test_latency_is_positive_lower_is_better_and_slower_for_convolutions():
    assert PROXIES["latency"].direction == -1 and PROXIES["latency"].batch_size is None
    cfg = compose("rank", ["space=nb201", "space.retrain.channels=8", "space.retrain.cells_per_stage=1"])
    setup = ScoringSetup("nb201", OmegaConf.to_container(cfg.space), "retrain", RGB, ["latency", "params"],
                         {"latency": None, "params": None}, {}, 0, latency={"batch": 8, "repeats": 9, "warmup": 2})
    space = get_space("nb201")
    skip, conv = score_chunk(setup, [space.make({"arch_str": s}).genotype for s in (ALL_SKIP, ALL_CONV)])
    assert skip["status"] == conv["status"] == "ok"
    assert 0 < skip["latency"] < conv["latency"]  # six 3x3 convolutions per cell against six identities


def test_latency_leaves_the_model_as_it_found_it():
    import torch

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ms = measure_latency_ms(model, RGB, LatencySettings(batch=2, repeats=3, warmup=1))
    assert ms > 0 and model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # eval mode: BN stats untouched


def test_rank_with_latency_writes_both_fronts(cli, run_root):
    res = cli("rank", "--sample", "4", "space=nb201", "dataset=digits", "proxy=synflow,latency",
              "space.retrain.channels=4", "space.retrain.cells_per_stage=1", "latency.repeats=3",
              "executor.workers=1", "--run-root", run_root)
    assert res.exit_code == 0, res.output
    run = RunDir.open(run_of(res))
    ranked = run.read_frame(RunDir.RANKED)
    assert len(ranked) == 4 and (ranked["latency"] > 0).all()
    assert ranked["pareto_latency"].any() and ranked["pareto_params"].any()
    assert bool(ranked["pareto_latency"].iloc[0]) and bool(ranked["pareto_params"].iloc[0])  # the best score is on both
    assert json.loads((run.path / RunDir.PROXIES).read_text())["directions"]["latency"] == -1


@pytest.mark.parametrize("bad", ["latency.repeats=0", "latency.batch=-1"])
def test_latency_settings_are_range_checked(cli, run_root, bad):
    res = cli("rank", "--sample", "2", "space=nb201", "dataset=digits", "proxy=latency", bad, "--run-root", run_root)
    assert res.exit_code == 2 and bad.split("=")[0] in res.stderr


def test_retrain_times_the_trained_network_beside_its_result(cli, run_root):
    res = cli("retrain", "darts:DARTS_V2", "dataset=digits", "budget=smoke", "space.retrain.channels=4",
              "space.retrain.layers=3", "latency.repeats=3", "latency.throughput_batch=16", "--run-root", run_root)
    assert res.exit_code == 0, res.output
    run = RunDir.open(run_of(res))
    timing = json.loads((run.path / RunDir.LATENCY).read_text())
    assert timing["latency_ms"] > 0 and timing["throughput_img_s"] > 0 and timing["throughput_batch"] == 16
    assert "latency_ms" not in json.loads((run.path / RunDir.RESULT).read_text())  # result.json holds no timings
    assert run.manifest["summary"]["latency_ms"] == timing["latency_ms"]
