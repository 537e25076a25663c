"""Executors: the same results from every engine and worker count, failing tasks retried then marked, and a
missing optional engine named with its pip command. Parametrized over the executor registry."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from nascli.executors.base import EXECUTORS, TaskFailure, load_executor_plugins, make_executor
from nascli.rundir import RunDir

from .conftest import run_of, share_latency_tables

load_executor_plugins()

# What each built-in engine needs to run on this machine (a new executor runs with its defaults).
ENGINE = {
    "local": ["executor.workers=2"],
    "ray": ["executor.num_cpus=2"],
    "slurm": ["executor.cluster=local", "executor.poll_s=0.2"],
}
SMOKE = ["strategy=random", "dataset=digits", "budget=smoke"]


def engine_args(name: str, tmp_path: Path) -> list[str]:
    extra = [f"executor.folder={tmp_path / 'submitit'}"] if name == "slurm" else []
    return [f"executor={name}", *ENGINE.get(name, []), *extra]


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """A smoke random search, candidates one after another in this process."""
    from typer.testing import CliRunner

    from nascli.cli import app

    root = tmp_path_factory.mktemp("sequential")
    res = CliRunner().invoke(app, ["search", *SMOKE, "executor.workers=1", "--run-root", str(root)])
    assert res.exit_code == 0, res.output
    return RunDir.open(run_of(res))


@pytest.mark.parametrize("name", sorted(EXECUTORS))
def test_every_engine_gives_the_archs_csv_of_one_process(name, sequential, cli, tmp_path):
    share_latency_tables(sequential.path.parent.parent, tmp_path)  # the same root's table: the same latency column
    res = cli("search", *SMOKE, *engine_args(name, tmp_path), "--run-root", tmp_path)
    assert res.exit_code == 0, res.output
    run = RunDir.open(run_of(res))
    assert (run.path / RunDir.ARCHS).read_bytes() == (sequential.path / RunDir.ARCHS).read_bytes()
    assert (run.path / RunDir.RANKED).read_bytes() == (sequential.path / RunDir.RANKED).read_bytes()
    assert run.manifest["executor"]["name"] == name


def test_retrain_batch_through_ray_equals_sequential(sequential, cli, tmp_path):
    size = ["budget=smoke", "space.retrain.channels=4", "space.retrain.layers=3"]
    results = {}
    for label, engine in (("local", ["executor.workers=1"]), ("ray", engine_args("ray", tmp_path))):
        root = tmp_path / label
        if label == "ray":  # one run root's latency measurements, as a user re-running in one root has
            share_latency_tables(tmp_path / "local", root)
        res = cli("retrain", sequential.path, "--top", "2", *size, *engine, "--run-root", root)
        assert res.exit_code == 0, res.output
        results[label] = {json.loads(p.read_text())["arch_id"]: p.read_bytes()
                          for p in (root / "retrain").glob("*/result.json")}
    assert len(results["local"]) == 2 and results["ray"] == results["local"]


def flaky(shared, task):
    """Fails task 1 on every attempt, and counts attempts in a file (the workers are other processes)."""
    with open(Path(shared) / f"attempts_{task}", "a") as fh:
        fh.write("x")
    if task == 1:
        raise ValueError("cell 1 always diverges")
    return task * 10


@pytest.mark.parametrize("name", sorted(EXECUTORS))
def test_a_failing_task_is_retried_then_marked_failed(name, tmp_path):
    from omegaconf import OmegaConf

    from nascli.config import compose

    overrides = engine_args(name, tmp_path) + ["executor.retries=2"]
    cfg = compose("search", overrides)
    if name == "ray":
        OmegaConf.update(cfg, "executor.num_cpus", 2)
    executor = make_executor(cfg.executor, OmegaConf.create({"threads": 1}))
    results = dict(executor.run(flaky, str(tmp_path), [0, 1, 2]))
    assert results[0] == 0 and results[2] == 20  # the sweep went on
    assert isinstance(results[1], TaskFailure) and "cell 1 always diverges" in results[1].error
    assert results[1].attempts == 3 and (tmp_path / "attempts_1").read_text() == "xxx"


@pytest.mark.parametrize("name,module", [("ray", "ray"), ("slurm", "submitit")])
def test_missing_engine_is_one_line_with_the_pip_command(name, module, cli, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if the extra was not installed
    res = cli("search", *SMOKE, f"executor={name}", "--run-root", tmp_path)
    assert res.exit_code == 2
    extra = "ray" if name == "ray" else "slurm"
    assert res.stderr.strip() == (f"nas: error: executor={name} needs {module}, which is not installed; "
                                  f"pip install 'nascli[{extra}]'")
    assert not (tmp_path / "search").exists() or not any((tmp_path / "search").iterdir())


def visible_gpu(shared, task):
    import time

    time.sleep(0.3)  # long enough that both workers take tasks
    return os.getpid(), os.environ.get("CUDA_VISIBLE_DEVICES")


def test_pool_workers_get_one_gpu_each():
    """On a GPU machine each pool worker sees one GPU of its own. No GPU here: the assignment is checked with
    the GPU ids a 2-GPU machine would list (what the worker sees is all the code decides)."""
    from omegaconf import OmegaConf

    from nascli.executors.local import LocalExecutor

    auto = LocalExecutor(OmegaConf.create({"name": "local", "workers": "auto"}), 1, gpus=["0"])
    assert auto.workers == 1  # never more workers than GPUs
    pool = LocalExecutor(OmegaConf.create({"name": "local", "workers": 2, "retries": 0}), 1, gpus=["3", "5"])
    assert pool.describe()["gpus"] == ["3", "5"]
    seen = dict(result for _, result in pool.run(visible_gpu, None, list(range(6))))
    assert set(seen.values()) <= {"3", "5"}
    assert len(set(seen.values())) == len(seen)  # no two workers share a GPU
