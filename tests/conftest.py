"""Shared fixtures: an isolated cache and run root, the shared data if it is present."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

if "PYTEST_XDIST_WORKER" in os.environ:
    # `make test` runs two pytest workers on two cores: one thread each (and in every process a test starts),
    # or their intra-op threads oversubscribe the cores and every timing in the suite thrashes.
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, "1")


def shared_dir() -> Path | None:
    """../shared beside the checkout (or $NASCLI_SHARED); None when absent (tests then skip)."""
    path = Path(os.environ.get("NASCLI_SHARED", REPO.parent / "shared"))
    return path if path.is_dir() else None


SHARED = shared_dir()
needs_shared = pytest.mark.skipif(SHARED is None, reason="../shared (datasets, benchmarks) is not present")

# Small, fast settings for end-to-end runs on digits: a few batches, tiny networks.
TINY = [
    "dataset=digits", "budget=smoke", "space.search.channels=4", "space.search.layers=3",
    "space.retrain.channels=4", "space.retrain.layers=3",
    "executor.workers=1",  # a pool's start-up would dominate these seconds-long runs (pools: test_executors.py)
]


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    cache = tmp_path_factory.getbasetemp() / "nascli-cache"
    monkeypatch.setenv("NASCLI_CACHE", str(cache))
    monkeypatch.setenv("NASCLI_PROGRESS", "0")
    if SHARED is not None:
        monkeypatch.setenv("NASCLI_SHARED", str(SHARED))


@pytest.fixture
def run_root(tmp_path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def cli():
    """Invoke the Typer app in-process; returns click's Result (exit_code, stdout, stderr)."""
    from typer.testing import CliRunner

    from nascli.cli import app

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args])

    return invoke


def tree_digest(root: Path) -> dict[str, str]:
    """Path -> content hash of every file under root (to prove nothing changed)."""
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run_of(res) -> Path:
    """The run directory a command printed (`run: PATH`)."""
    return Path(next(line for line in res.stdout.splitlines() if line.startswith("run: "))[5:].strip())


def fake_nb201_table(path: Path, n: int) -> tuple[Path, list]:
    """A benchmark-shaped CSV of n seeded NB201 cells with made-up accuracies 50..90 (column `acc`)."""
    import random

    import numpy as np
    import pandas as pd

    from nascli.spaces import get_space

    space = get_space("nb201")
    archs = [space.sample(random.Random(i)) for i in range(n)]
    pd.DataFrame({"arch_str": [space.arch_str(a) for a in archs], "acc": np.linspace(50, 90, n)}).to_csv(path, index=False)
    return path, archs


def share_latency_tables(src_root: Path, dst_root: Path) -> None:
    """Give `dst_root` the per-op latency tables `src_root` measured: runs under one root read one table, so
    their latency columns are equal (a run under a fresh root would time its own)."""
    import shutil

    cache = Path(src_root) / ".cache"
    if cache.is_dir():
        shutil.copytree(cache, Path(dst_root) / ".cache", dirs_exist_ok=True)
