"""Supernet strategies (SNAS, SMASH) data-parallel under torchrun: two gloo ranks on the CPU write one run directory,
every rank derived the same child (checked by the run itself each epoch, recorded in the manifest), and a run whose
rank 0 is SIGKILLed resumes under torchrun to the same bytes as the uninterrupted run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from nascli.commands.search import DATA_PARALLEL
from nascli.resume import KILL_ENV
from nascli.rundir import RunDir
from tests.conftest import share_latency_tables

ENV = {**os.environ, "NASCLI_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
# The distributed resume path (rank 0 saves, broadcasts on resume) is the same code for every data-parallel
# strategy; it is killed and resumed for one of them (each kill test costs two more two-rank launches), and
# every strategy's own checkpoint round trip is killed three times in one process in test_resume.py.
RESUMED = ("snas",)
# --standalone: a free port per launch. With torchrun's fixed default (29500), two launches from the two xdist
# workers at once met in one store, and a rank crashed (it happened once, on the smash and snas cases).
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "nascli",
            "search"]


def _torchrun(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(TORCHRUN + args, capture_output=True, text=True, env=env or ENV, timeout=600)


def _only_run(root) -> RunDir:
    runs = list((root / "search").iterdir())
    assert len(runs) == 1  # rank 1 wrote nothing here
    return RunDir.open(runs[0])


@pytest.mark.parametrize("strategy", DATA_PARALLEL)
def test_two_gloo_ranks_write_one_run_agree_and_resume(strategy, tmp_path):
    # Small networks: three torchrun launches of two ranks each.
    small = (["space.search.channels=8", "space.retrain.channels=8"] if strategy == "smash" else
             ["space.search.channels=4", "space.search.layers=3", "space.retrain.channels=4", "space.retrain.layers=3"])
    args = [f"strategy={strategy}", "dataset=digits", "budget=smoke", "device.threads=1", "executor.workers=1",
            "latency.repeats=3", "latency.warmup=1", *small]  # latency tables: timed quickly, their values do not matter here
    if strategy == "snas":  # rank 0 times the latency table and sends it: both ranks must optimise the same penalty
        args.append("strategy.penalty.cost=latency")
    res = _torchrun([*args, "--run-root", str(tmp_path / "whole")])
    assert res.returncode == 0, res.stderr[-3000:]
    whole = _only_run(tmp_path / "whole")
    manifest = json.loads((whole.path / RunDir.MANIFEST).read_text())
    assert manifest["status"] == "done"
    assert manifest["distributed"] == {"world_size": 2, "backend": "gloo", "ranks_agree": True}
    ranked = whole.read_frame(RunDir.RANKED)
    assert len(ranked) >= 1 and ranked["score"].notna().all()
    assert res.stdout.count("run: ") == 1  # one table, printed by rank 0

    if strategy not in RESUMED:
        return
    # Rank 0 dies (SIGKILL) at its third checkpoint; torchrun stops rank 1; the same launch resumes it.
    killed_root = tmp_path / "killed"
    share_latency_tables(tmp_path / "whole", killed_root)
    res = _torchrun([*args, "checkpoint.every_s=0", "--run-root", str(killed_root)], env={**ENV, KILL_ENV: "3"})
    assert res.returncode != 0
    killed = _only_run(killed_root)
    assert killed.status == "interrupted"
    assert killed.resume_command().startswith("torchrun --nproc-per-node 2 -m nascli search --resume ")
    res = _torchrun(["--resume", "latest", "--run-root", str(killed_root)])
    assert res.returncode == 0, res.stderr[-3000:]
    resumed = _only_run(killed_root)
    assert resumed.manifest["distributed"]["ranks_agree"] is True
    assert len(resumed.manifest["resumed_at"]) == 1
    for name in (RunDir.ARCHS, RunDir.RANKED):
        assert (resumed.path / name).read_bytes() == (whole.path / name).read_bytes(), name
