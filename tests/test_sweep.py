"""Sweeps (`nas search -m`): Hydra's grammar, jobs through the executor, kill -9 and --resume, the statistics of
`nas report SWEEP` on synthetic runs with known means and spreads, and the page in a real browser."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nascli.errors import UserError
from nascli.resume import KILL_ENV
from nascli.sweep import plan_sweep
from nascli.sweep_summary import SweepData, curve_by_evaluations, curve_by_seconds, pairwise, summarize
from tests.conftest import SHARED, needs_shared
from tests.test_report import CHROMIUM, PROBE, _chromium, assert_fits

pytestmark = pytest.mark.xdist_group("sweep")

CELLS = ["dataset=digits", "budget=smoke", "space.search.channels=4", "space.search.layers=3",
         "space.retrain.channels=4", "space.retrain.layers=3", "device.threads=1", "checkpoint.every_s=0"]
GRID = ["strategy=random,evolution", "seed=0,1"]
# What must agree between two sweeps of the same grid (wall times and paths differ).
RESULT_COLUMNS = ["job", "status", "headline_key", "headline"]


def nas(*args, kill_after: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "NASCLI_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    env.pop(KILL_ENV, None)
    if kill_after:
        env[KILL_ENV] = str(kill_after)
    return subprocess.run([sys.executable, "-m", "nascli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600)


def sweep_folder(root: Path) -> Path:
    (folder,) = sorted((root / "sweep").iterdir())
    return folder


# -- grammar --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, expected", [
    (["seed=0,1", "strategy=random"], [["seed=0", "strategy=random"], ["seed=1", "strategy=random"]]),
    (["seed=range(0,3)"], [["seed=0"], ["seed=1"], ["seed=2"]]),
    (["seed=range(0,6,2)", "strategy=random,evolution"],
     [[f"seed={s}", f"strategy={k}"] for s in (0, 2, 4) for k in ("random", "evolution")]),
    # glob() over the config group's options (darts, membank, nb201, pnas), as Hydra's sweeper expands it
    (["space=glob(nb*)", "seed=0,1"], [["space=nb201", "seed=0"], ["space=nb201", "seed=1"]]),
    (["space=glob(*,exclude=membank)", "seed=3"], [["space=darts", "seed=3"], ["space=nb201", "seed=3"], ["space=pnas", "seed=3"]]),
    # a quoted comma is part of one value, not a sweep
    (["seed=0,1", "benchmark.table='a,b.csv'"],
     [["seed=0", "benchmark.table='a,b.csv'"], ["seed=1", "benchmark.table='a,b.csv'"]]),
])
def test_grammar_expands_as_hydras_basic_sweeper(overrides, expected):
    plan = plan_sweep("search", overrides)
    assert plan.jobs == expected
    assert math.prod(len(v) for v in plan.grid.values()) == len(expected)


@pytest.mark.parametrize("args, message", [
    (["-m", "seed=0,1", "strategy.no_such_key=1"], "strategy.no_such_key"),
    (["-m", "seed=range(0,x)"], "cannot read the sweep"),
    (["-m", "strategy=random,nope"], "nope"),
    (["-m", "seed=0"], "no override has one"),
    (["-m", "seed=range(0,20000)"], "sweep.max_jobs"),
    (["-m", "seed=range(0,3)", "sweep.max_jobs=2"], "sweep.max_jobs"),
    (["--resume", "runs_not_here/sweep/x", "-m"], "not a sweep"),
])
def test_bad_sweeps_fail_before_any_job(cli, run_root, args, message):
    res = cli("search", *args, "--run-root", run_root)
    assert res.exit_code == 2, res.output
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert not (run_root / "sweep").exists() or not any((run_root / "sweep").iterdir())


def test_plan_refuses_overrides_that_are_not_a_sweep():
    with pytest.raises(UserError, match="no override has one"):
        plan_sweep("search", ["seed=1", "strategy=random"])


# -- running, failing, resuming -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pooled_sweep(tmp_path_factory) -> Path:
    """The 2x2 smoke sweep (random, evolution x seeds 0, 1) through the local pool of two workers."""
    root = tmp_path_factory.mktemp("pooled")
    res = nas("search", "-m", *GRID, *CELLS, "executor.workers=2", "--run-root", root)
    assert res.returncode == 0, res.stderr[-3000:]
    return sweep_folder(root)


def test_smoke_sweep_runs_every_job_through_the_pool(pooled_sweep):
    jobs = pd.read_csv(pooled_sweep / "jobs.csv")
    assert list(jobs["status"]) == ["done"] * 4
    for run_dir in jobs["run_dir"]:  # each job wrote its normal run directory, under the sweep
        assert Path(run_dir).is_relative_to(pooled_sweep / "jobs")
        assert json.loads((Path(run_dir) / "manifest.json").read_text())["status"] == "done"
    assert jobs["headline"].between(0, 100).all() and (jobs["headline_key"] == "best_score").all()
    sweep = (pooled_sweep / "sweep.yaml").read_text()
    assert "strategy:\n  - random\n  - evolution" in sweep and "seed:" in sweep
    summary = pd.read_csv(pooled_sweep / "summary.csv")
    assert list(summary["group"]) == ["strategy=random", "strategy=evolution"] and list(summary["n"]) == [2, 2]
    for group, rows in jobs.assign(group=[o.split()[0] for o in jobs["overrides"]]).groupby("group", sort=False):
        expected = rows["headline"].to_numpy()
        row = summary[summary["group"] == group].iloc[0]
        assert row["mean"] == pytest.approx(expected.mean()) and row["std"] == pytest.approx(expected.std(ddof=1))
    assert (pooled_sweep / "report.html").is_file() and (pooled_sweep / "pairwise.csv").is_file()


def test_killed_sweep_resumed_gives_the_same_results(pooled_sweep, tmp_path):
    # One process (workers=1): the kill hook counts the checkpoints of every job it runs; 6 lands in job 2.
    res = nas("search", "-m", *GRID, *CELLS, "executor.workers=1", "--run-root", tmp_path, kill_after=6)
    assert res.returncode != 0
    folder = sweep_folder(tmp_path)
    killed = pd.read_csv(folder / "jobs.csv")
    assert list(killed["status"]) == ["done", "pending", "pending", "pending"]
    run_of_job_1 = sorted((folder / "jobs" / "00001" / "search").iterdir())
    assert len(run_of_job_1) == 1  # job 1 was interrupted mid-run: resume must continue it, not start over

    res = nas("search", "--resume", folder)
    assert res.returncode == 0, res.stderr[-3000:]
    resumed = pd.read_csv(folder / "jobs.csv")
    reference = pd.read_csv(pooled_sweep / "jobs.csv")
    pd.testing.assert_frame_equal(resumed[RESULT_COLUMNS], reference[RESULT_COLUMNS])
    assert sorted((folder / "jobs" / "00001" / "search").iterdir()) == run_of_job_1
    pd.testing.assert_frame_equal(pd.read_csv(folder / "summary.csv"), pd.read_csv(pooled_sweep / "summary.csv"))


def test_a_failing_job_is_marked_and_the_sweep_goes_on(cli, run_root):
    # evaluator=table without a table fails at run time, in each job: the sweep records both and exits 1.
    res = cli("search", "-m", "seed=0,1", "space=nb201", "strategy.evaluator=table", "executor.workers=1",
              "--run-root", run_root)
    assert res.exit_code == 1
    assert "2 of 2 job(s) failed" in res.stderr
    jobs = pd.read_csv(sweep_folder(run_root) / "jobs.csv")
    assert list(jobs["status"]) == ["failed", "failed"] and jobs["error"].str.contains("benchmark.table").all()


# -- statistics on synthetic runs -------------------------------------------------------------------------------
def synthetic(values: dict[str, list[float]], curves: dict[str, list[list[float]]] | None = None) -> SweepData:
    rows, data_curves, job = [], {}, 0
    for group, finals in values.items():
        for i, final in enumerate(finals):
            rows.append({"job": job, "group": group, "seed": str(i), "status": "done", "final": final,
                         "evaluations": math.nan, "evaluations_to_top": math.nan, "seconds": 1.0})
            if curves:
                incumbent = curves[group][i]
                data_curves[job] = pd.DataFrame({"evaluation": range(1, len(incumbent) + 1), "incumbent": incumbent,
                                                 "seconds": np.arange(1, len(incumbent) + 1) * 0.1})
            job += 1
    return SweepData(pd.DataFrame(rows), data_curves, "acc", None)


def test_summary_has_the_known_means_spreads_and_quartiles():
    data = synthetic({"a": [1.0, 2.0, 3.0, 4.0, 5.0], "b": [10.0, 10.0, 10.0, 10.0, 20.0]})
    data.jobs.loc[len(data.jobs)] = {"job": 99, "group": "a", "seed": "9", "status": "failed", "final": math.nan,
                                     "evaluations": math.nan, "evaluations_to_top": math.nan, "seconds": math.nan}
    s = summarize(data.jobs).set_index("group")
    assert s.loc["a", "n"] == 5 and s.loc["a", "failed"] == 1 and s.loc["b", "failed"] == 0
    assert s.loc["a", "mean"] == 3.0 and s.loc["a", "std"] == pytest.approx(math.sqrt(2.5))
    assert s.loc["a", "se"] == pytest.approx(math.sqrt(2.5) / math.sqrt(5))
    assert (s.loc["a", "median"], s.loc["a", "q1"], s.loc["a", "q3"]) == (3.0, 2.0, 4.0)
    assert s.loc["b", "mean"] == 12.0 and s.loc["b", "median"] == 10.0 and s.loc["b", "std"] == pytest.approx(
        math.sqrt(20.0))


def test_pairwise_interval_covers_a_known_shift_and_the_rank_test_sees_it():
    rng = np.random.default_rng(1)
    a, b = rng.normal(94.0, 0.3, 100), rng.normal(93.5, 0.3, 100)
    data = synthetic({"a": list(a), "b": list(b), "c": list(b + rng.normal(0, 1e-9, 100))})
    pairs = pairwise(data.jobs).set_index(["a", "b"])
    ab = pairs.loc[("a", "b")]
    assert ab["mean_difference"] == pytest.approx(a.mean() - b.mean())
    assert ab["ci_low"] < ab["mean_difference"] < ab["ci_high"] and ab["ci_low"] > 0.3 and ab["ci_high"] < 0.7
    assert ab["p_value"] < 1e-6
    bc = pairs.loc[("b", "c")]
    assert bc["ci_low"] < 0 < bc["ci_high"] and bc["p_value"] > 0.5


def test_anytime_curves_carry_the_incumbent_forward_and_average_over_jobs():
    data = synthetic({"a": [3.0, 5.0]}, {"a": [[1.0, 3.0], [2.0, 4.0, 5.0]]})
    by_evals = curve_by_evaluations(data, "a")
    assert list(by_evals["mean"]) == [1.5, 3.5, 4.0]  # the 2-evaluation job keeps 3.0 at evaluation 3
    assert by_evals["se"].iloc[0] == pytest.approx(np.std([1.0, 2.0], ddof=1) / math.sqrt(2))
    by_time = curve_by_seconds(data, "a", points=5)
    assert by_time["mean"].iloc[-1] == 4.0 and list(by_time["n"]) == [2] * 5


@pytest.fixture(scope="module")
def table_sweep(tmp_path_factory) -> Path:
    """Random and evolution on NB201's table (fitness: 12-epoch validation, judged by the 200-epoch test)."""
    root = tmp_path_factory.mktemp("table")
    table = SHARED / "benchmarks" / "nb201" / "nb201_cifar10.csv"
    res = nas("search", "-m", "strategy=random,evolution", "seed=0,1", "space=nb201", "strategy.evaluator=table",
              f"benchmark.table={table}", "budget.candidates=30", "device.threads=1", "executor.workers=1",
              "--run-root", root)
    assert res.returncode == 0, res.stderr[-3000:]
    return sweep_folder(root)


@needs_shared
def test_table_sweep_reports_the_protocol_incumbent_and_evaluations_to_the_top(table_sweep):
    jobs = pd.read_csv(table_sweep / "jobs.csv")
    table = pd.read_csv(SHARED / "benchmarks" / "nb201" / "nb201_cifar10.csv")
    line = np.quantile(table["cifar10_test_200ep"], 0.99)
    reached = {}
    for job in jobs.itertuples():
        evaluations = pd.read_csv(Path(job.run_dir) / "evaluations.csv")
        assert len(evaluations) == 30 and job.headline == evaluations["incumbent"].iloc[-1]
        hit = evaluations.loc[evaluations["incumbent"] >= line, "evaluation"]
        reached.setdefault(job.overrides.split()[0], []).append(hit.iloc[0] if len(hit) else math.nan)
    summary = pd.read_csv(table_sweep / "summary.csv").set_index("group")
    for group, hits in reached.items():
        hits = pd.Series(hits, dtype=float)
        assert summary.loc[group, "n"] == 2 and summary.loc[group, "evaluations"] == 30
        assert summary.loc[group, "reached_top"] == hits.notna().sum()
        assert summary.loc[group, "evaluations_to_top_median"] == pytest.approx(hits.median(), nan_ok=True)
    for name in ("anytime_evaluations.png", "anytime_seconds.png"):
        assert (table_sweep / name).stat().st_size > 10_000


@needs_shared
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (CI installs it)")
def test_sweep_page_renders_in_a_real_browser(table_sweep, tmp_path):
    page = table_sweep / "report.html"
    probed = tmp_path / "sweep.html"
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = _chromium("--dump-dom", "--window-size=1280,1600", probed.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    probe = json.loads(dom.stdout.split('data-probe="', 1)[1].split('"', 1)[0].replace("&quot;", '"'))
    assert probe["broken"] == 0 and probe["images"] == 2  # the two anytime curves
    assert_fits(probe, "sweep")
    summary = pd.read_csv(table_sweep / "summary.csv")
    assert f"{summary['mean'].iloc[0]:.2f} ± {summary['std'].iloc[0]:.2f}" in dom.stdout
    assert "strategy=evolution" in dom.stdout and "Pairwise differences" in dom.stdout


# -- rank and retrain sweeps ------------------------------------------------------------------------------------
@needs_shared
def test_rank_sweep_and_its_correlation_per_group(cli, run_root):
    from scipy import stats

    table = SHARED / "benchmarks" / "nb201" / "nb201_cifar10.csv"
    res = cli("rank", "-m", "--sample", "20", "space=nb201", "dataset=digits", "proxy=params,flops", "seed=0,1",
              f"benchmark.table={table}", "executor.workers=1", "--run-root", run_root)
    assert res.exit_code == 0, res.output
    folder = sweep_folder(run_root)
    jobs = pd.read_csv(folder / "jobs.csv")
    assert list(jobs["status"]) == ["done"] * 4
    for job in jobs.itertuples():  # the headline is tau-b of the ranking column against the table, every row counted
        frame = pd.read_csv(Path(job.run_dir) / "archs.csv")
        proxy = job.overrides.split("proxy=")[1].split()[0]
        assert len(frame) == 20
        expected = stats.kendalltau(frame[proxy], frame["bench_cifar10_test_200ep"], variant="b").statistic
        assert job.headline == pytest.approx(expected)
    res = cli("correlate", folder, "bootstrap=200", "--run-root", run_root)
    assert res.exit_code == 0, res.output
    summary = pd.read_csv(folder / "correlation_summary.csv").set_index(["group", "proxy"])
    assert list(dict.fromkeys(summary.index.get_level_values(0))) == ["proxy=params", "proxy=flops"]
    assert (summary["jobs"] == 2).all()
    for group, rows in jobs.assign(group=[f"proxy={o.split('proxy=')[1].split()[0]}" for o in jobs["overrides"]]
                                   ).groupby("group"):
        proxy = group.split("=")[1]
        taus = []
        for run_dir in rows["run_dir"]:  # each job got its own correlate run beside it
            (correlate_run,) = (Path(run_dir).parents[1] / "correlate").iterdir()
            results = json.loads((correlate_run / "correlation.json").read_text())["results"]
            taus.append(next(r for r in results if r["proxy"] == proxy)["kendall_tau"])
        row = summary.loc[(group, proxy)]
        assert row["tau_mean"] == pytest.approx(np.mean(taus)) and row["tau_std"] == pytest.approx(np.std(taus, ddof=1))
        assert row["tau_ci_low"] <= row["tau_mean"] <= row["tau_ci_high"]


def test_retrain_sweep_runs_one_retrain_per_job(cli, run_root):
    res = cli("retrain", "-m", "darts:DARTS_V2", "dataset=digits", "budget=smoke", "space.retrain.channels=4",
              "space.retrain.layers=3", "seed=0,1", "executor.workers=1", "--run-root", run_root)
    assert res.exit_code == 0, res.output
    jobs = pd.read_csv(sweep_folder(run_root) / "jobs.csv")
    assert list(jobs["status"]) == ["done", "done"] and (jobs["headline_key"] == "test_acc").all()
    for job in jobs.itertuples():
        result = json.loads((Path(job.run_dir) / "result.json").read_text())
        assert result["test_acc"] == job.headline and result["seed"] == job.job


def test_correlate_refuses_a_sweep_of_searches(cli, pooled_sweep):
    res = cli("correlate", pooled_sweep)
    assert res.exit_code == 2 and "sweep of rank runs" in res.stderr


def test_an_unknown_proxy_in_a_rank_grid_fails_before_any_job(cli, run_root):
    res = cli("rank", "-m", "--sample", "3", "proxy=params,nope", "seed=0", "--run-root", run_root)
    assert res.exit_code == 2 and "nope" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (run_root / "sweep").exists()
