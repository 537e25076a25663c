"""SNAS with a latency penalty: does a larger λ give children that are measurably faster?

Runs `nas search strategy=snas strategy.penalty.cost=latency` on digits (the default cpu budget) at each
penalty weight λ (`--weights`) and seed, one thread per search, `--jobs` searches at a time, all under one run
root so that every search reads the same per-op latency table (built first, by a one-epoch search). Then
times every derived child (arch.json) at the retrain size, all children together in rounds
(nascli.latency.interleaved_ms, median over `--repeats` rounds, one thread), and reports per λ: the child's
measured latency, its table prediction, the penalty's expected latency at the last epoch, params and
validation accuracy with the supernet's weights, per seed and as means.

    python bench/snas_latency.py [--weights 0,0.02] [--seeds 0,1] [--jobs 2] [--out bench/snas_latency.json]
                                 [--extra strategy.penalty.target_ms=30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from nascli import atomic
from nascli.arch_io import read_arch_file
from nascli.config import compose
from nascli.latency import LatencySettings, interleaved_ms, timing_input
from nascli.latency_table import LatencyTable
from nascli.measure import count_params
from nascli.spaces import DataShape, get_space

REPO = Path(__file__).resolve().parents[1]


def search(root: Path, overrides: list[str]) -> Path:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "nascli", "search", "strategy=snas", "dataset=digits",
                          "device=cpu", "device.threads=1", "strategy.penalty.cost=latency", "--run-root", str(root),
                          *overrides], capture_output=True, text=True, env=env, cwd=REPO)
    if out.returncode != 0:
        raise SystemExit(f"search {overrides} failed:\n{out.stderr[-2000:]}")
    return max((root / "search").iterdir(), key=lambda p: p.stat().st_mtime)


def last_epoch(run: Path) -> dict:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if "expected_latency_ms" in r][-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default="0,0.02", help="penalty weights λ (strategy.penalty.weight)")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--extra", action="append", default=[], help="more overrides for every search")
    ap.add_argument("--out", default="bench/snas_latency.json")
    args = ap.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    root = Path(tempfile.mkdtemp(prefix="nascli-snas-latency-"))
    started = time.perf_counter()
    search(root, ["budget=smoke", *args.extra])  # times the table once, under the shared root
    settings = [(w, s) for w in weights for s in seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(lambda ws: search(root, [f"strategy.penalty.weight={ws[0]}", f"seed={ws[1]}",
                                                      *args.extra]), settings))
    torch.set_num_threads(1)
    cfg = compose("search", ["strategy=snas", "dataset=digits"])
    space = get_space("darts", cfg.space)
    shape = DataShape(1, 8, 8, 10)
    table = LatencyTable.cached(space, LatencySettings(1, 20, 3), root, torch.device("cpu"))
    children = [read_arch_file(run / "arch.json") for run in runs]
    models = []
    for arch in children:
        torch.manual_seed(0)
        models.append(space.build(arch, shape, cfg.space.retrain).eval())
    with torch.no_grad():
        runs_ = [(lambda m=m, x=timing_input(m, 1, 1, 8, 8): m(x)) for m in models]
        measured = interleaved_ms(runs_, torch.device("cpu"), LatencySettings(1, args.repeats, 3))
    rows = []
    for (w, s), run, arch, model, ms in zip(settings, runs, children, models, measured, strict=True):
        epoch = last_epoch(run)
        summary = json.loads((run / "manifest.json").read_text())["summary"]
        rows.append({"weight": w, "seed": s, "arch_id": arch.arch_id, "measured_ms": round(ms, 3),
                     "table_ms": round(table.predict_ms(model, shape), 3),
                     "expected_latency_ms": round(epoch["expected_latency_ms"], 3), "params": count_params(model),
                     "child_val_acc": epoch["child_acc"], "best_score": summary["best_score"],
                     "description": space.describe(arch)})
    by_weight = {}
    for w in weights:
        mine = [r for r in rows if r["weight"] == w]
        by_weight[str(w)] = {k: round(statistics.mean(r[k] for r in mine), 3)
                             for k in ("measured_ms", "table_ms", "expected_latency_ms", "params", "child_val_acc")}
    result = {"what": "SNAS cost=latency on digits: derived children's latency per penalty weight",
              "command": "nas search strategy=snas dataset=digits device=cpu device.threads=1 "
                         "strategy.penalty.cost=latency strategy.penalty.weight=W seed=S " + " ".join(args.extra),
              "network": "darts retrain size (C=16, 8 cells), 8x8x1, batch 1, eval mode, one thread",
              "timing": f"all children together in rounds, median of {args.repeats}", "seeds": seeds,
              "torch": torch.__version__, "seconds": round(time.perf_counter() - started, 1),
              "mean_by_weight": by_weight, "rows": rows}
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=1))
    for r in rows:
        print(r)
    atomic.write_json(Path(args.out), result)


if __name__ == "__main__":
    main()
