"""Supernet strategies (SNAS, SMASH) data-parallel under torchrun: two gloo ranks on the CPU write one run directory, and every rank derived
the same child (checked by the run itself each epoch, recorded in the manifest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from nascli.commands.search import DATA_PARALLEL
from nascli.rundir import RunDir


@pytest.mark.parametrize("strategy", DATA_PARALLEL)
def test_two_gloo_ranks_write_one_run_and_agree(strategy, tmp_path):
    env = {**os.environ, "NASCLI_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "nascli", "search",
           f"strategy={strategy}", "dataset=digits", "budget=smoke", "device.threads=1", "executor.workers=1",
           "--run-root", str(tmp_path)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    runs = list((tmp_path / "search").iterdir())
    assert len(runs) == 1  # rank 1 wrote nothing here
    manifest = json.loads((runs[0] / RunDir.MANIFEST).read_text())
    assert manifest["status"] == "done"
    assert manifest["distributed"] == {"world_size": 2, "backend": "gloo", "ranks_agree": True}
    ranked = RunDir.open(runs[0]).read_frame(RunDir.RANKED)
    assert len(ranked) >= 1 and ranked["score"].notna().all()
    assert res.stdout.count("run: ") == 1  # one table, printed by rank 0
