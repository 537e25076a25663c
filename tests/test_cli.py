"""End to end through the `nas` CLI: search -> retrain, run directories, determinism."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import torch

from .conftest import TINY, run_of


def only_run(root, kind):
    runs = sorted((root / kind).iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def test_search_then_retrain_writes_run_directories(cli, run_root):
    res = cli("search", "strategy=random", *TINY, "--run-root", run_root)
    assert res.exit_code == 0, res.stderr + res.stdout
    run = only_run(run_root, "search")
    for name in ("config.yaml", "manifest.json", "metrics.jsonl", "archs.csv", "ranked.csv", "arch.json",
                 "plots/scores.png", "checkpoints/strategy.pt"):
        assert (run / name).is_file(), name
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "done" and manifest["kind"] == "search" and manifest["seed"] == 0
    assert manifest["argv"][:2] == ["nas", "search"] and "torch" in manifest["versions"]
    archs = pd.read_csv(run / "archs.csv")
    assert len(archs) == 4 and set(archs.columns) >= {"arch_id", "score", "params", "flops", "status"}
    assert (archs["params"] > 0).all() and (archs["flops"] > 0).all()
    ranked = pd.read_csv(run / "ranked.csv")
    assert list(ranked["rank"]) == list(range(1, len(ranked) + 1))
    assert ranked["score"].is_monotonic_decreasing
    best = json.loads((run / "arch.json").read_text())
    assert best["arch_id"] == ranked["arch_id"][0] and best["format"] == "nascli.arch/1"
    assert {p.stem for p in (run / "archs").glob("*.json")} == set(archs["arch_id"])
    assert "best" in res.stdout and ranked["arch_id"][0] in res.stdout

    res = cli("retrain", run / "arch.json", "budget=smoke", "space.retrain.channels=4", "space.retrain.layers=3",
              "--run-root", run_root)
    assert res.exit_code == 0, res.stderr + res.stdout
    rdir = only_run(run_root, "retrain")
    result = json.loads((rdir / "result.json").read_text())
    assert result["arch_id"] == best["arch_id"]
    for key in ("val_acc", "test_acc", "params", "flops"):
        assert result[key] is not None
    assert json.loads((rdir / "manifest.json").read_text())["wall_time_s"] > 0
    ckpt = torch.load(rdir / "checkpoints" / "best.pt", weights_only=True)
    assert ckpt["arch"]["arch_id"] == best["arch_id"] and ckpt["config"]["dataset"]["name"] == "digits"
    assert (rdir / "checkpoints" / "last.pt").is_file() and (rdir / "plots" / "curves.png").is_file()
    assert json.loads((rdir / "manifest.json").read_text())["status"] == "done"
    # `latest` and a checkpoint are architecture references too
    res = cli("retrain", "latest", "--print-config", "--run-root", run_root)
    assert res.exit_code == 0 and "space:" in res.stdout
    res = cli("retrain", rdir / "checkpoints" / "best.pt", "--print-config")
    assert res.exit_code == 0 and "name: darts" in res.stdout


def test_same_seed_same_archs_csv(cli, tmp_path):
    """Same seed and config: the same bytes under one run root. Under another root everything but the measured
    latency (the root's own latency table) is the same."""
    runs = []
    for root in (tmp_path / "r0", tmp_path / "r0", tmp_path / "r1"):
        res = cli("search", "strategy=random", *TINY, "seed=3", "--run-root", root)
        assert res.exit_code == 0, res.stderr
        runs.append(Path(run_of(res)))
    assert (runs[0] / "archs.csv").read_bytes() == (runs[1] / "archs.csv").read_bytes()
    assert (runs[0] / "ranked.csv").read_bytes() == (runs[1] / "ranked.csv").read_bytes()
    first, other = (pd.read_csv(r / "archs.csv") for r in (runs[0], runs[2]))
    assert "latency" in first.columns and (first["latency"] > 0).all()
    pd.testing.assert_frame_equal(first.drop(columns="latency"), other.drop(columns="latency"))


def test_retrain_preset_learns_digits(cli, run_root):
    """A measured outcome: a small DARTS_V2 network learns digits well above chance in 3 epochs."""
    res = cli("retrain", "darts:DARTS_V2", "dataset=digits", "budget.epochs=3", "space.retrain.channels=8",
              "space.retrain.layers=3", "--run-root", run_root)
    assert res.exit_code == 0, res.stderr
    result = json.loads((only_run(run_root, "retrain") / "result.json").read_text())
    assert result["test_acc"] > 80.0, result


def test_print_config_shows_resolved_values(cli):
    res = cli("search", "budget=smoke", "strategy.num_archs=9", "--print-config")
    assert res.exit_code == 0
    assert "num_archs: 9" in res.stdout and "name: smoke" in res.stdout and "${" not in res.stdout


def test_console_script_and_module_entry_points():
    script = Path(sys.executable).parent / "nas"  # installed next to the interpreter by pip
    commands = [[sys.executable, "-m", "nascli", "--help"]]
    if script.exists():
        commands.append([str(script), "--help"])
    for cmd in commands:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "search" in out.stdout and "retrain" in out.stdout
