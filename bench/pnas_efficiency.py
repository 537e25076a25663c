"""Search efficiency on NAS-Bench-201: PNAS (growths x predictors x K) vs regularized evolution vs random search.

Every strategy runs with the `table` evaluator (CIFAR-10 200-epoch test accuracy, no training), so a run is
a sequence of evaluations. Reported per setting over seeds: evaluations until the first top-1% cell is
evaluated (mean and per seed), best accuracy found within 50 and 100 evaluations, and PNAS's b -> b+1
predictor extrapolation (Spearman over *every* expansion the table scores, per level, mean over seeds).
Random search is exact from the table (sampling without replacement), not simulated.

    python bench/pnas_efficiency.py [--seeds 10] [--growths nodes,edges] [--predictors lstm,mlp,both]
                                    [--beams 8,16] [--jobs 2] [--out bench/pnas_efficiency.json]

A run goes on to `--horizon` evaluations (default 100); one that has not hit a top-1% cell by then is run
again to `--cap` (300) to find its first hit (runs are deterministic, so the first 100 are the same).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TABLE = Path(os.environ.get("NASCLI_SHARED", REPO.parent / "shared")) / "benchmarks/nb201/nb201_cifar10.csv"
METRIC = "cifar10_test_200ep"
TOP_FRACTION = 0.01


def first_hit(scores: list[float], threshold: float) -> int | None:
    """1-based index of the first evaluation at or above threshold."""
    return next((i + 1 for i, s in enumerate(scores) if s >= threshold), None)


def search(table: str, strategy: str, seed: int, evaluations: int, options: dict) -> tuple[list[float], list[dict]]:
    """One table-evaluated search: scores in evaluation order, and PNAS's per-level records."""
    os.environ["NASCLI_PROGRESS"] = "0"
    import torch

    torch.set_num_threads(1)
    from nascli.commands.search import run_search
    from nascli.config import compose

    overrides = [f"strategy={strategy}", "space=nb201", "strategy.evaluator=table", f"benchmark.table={table}",
                 f"benchmark.metric={METRIC}", f"seed={seed}", "dataset=digits", "executor.workers=1"]
    if strategy == "pnas":
        overrides += [f"strategy.max_evaluations={evaluations}", "strategy.rounds=1000",
                      f"strategy.growth={options['growth']}", f"strategy.predictor.kind={options['predictor']}",
                      f"strategy.beam={options['beam']}", f"strategy.levels={options['levels']}"]
    else:
        overrides += [f"strategy.evaluations={evaluations}"]
    with tempfile.TemporaryDirectory() as tmp:
        out = run_search(compose("search", overrides), run_root=Path(tmp), argv=["bench"], overrides=[])
        frame = pd.read_csv(out.run.path / "archs.csv")
        records = [json.loads(line) for line in (out.run.path / "metrics.jsonl").read_text().splitlines()]
    levels = [r for r in records if r.get("event") == "level"]
    return frame.sort_values("evaluation")["score"].tolist(), levels


def one_seed(job: tuple) -> dict:
    table, strategy, options, seed, horizon, cap, threshold = job
    scores, levels = search(table, strategy, seed, horizon, options)
    hit = first_hit(scores, threshold)
    if hit is None and len(scores) >= horizon:
        longer, _ = search(table, strategy, seed, cap, options)
        assert longer[:horizon] == scores[:horizon], "a longer run must start with the same evaluations"
        hit = first_hit(longer, threshold)
    extrapolation = {}
    for r in levels:
        if r.get("round", 0) == 0 and r.get("predictor_extrapolation_all"):
            extrapolation[str(r["level"])] = r["predictor_extrapolation_all"]["spearman"]
    return {"seed": seed, "first_hit": hit, "evaluations": len(scores),
            "best_50": max(scores[:50]), "best_100": max(scores[:100]), "extrapolation_all": extrapolation}


def random_expectations(acc: np.ndarray, threshold: float) -> dict:
    """Exact for sampling without replacement: E[first hit] = (N+1)/(T+1), E[best of n] from order statistics."""
    n_cells, top = len(acc), int((acc >= threshold).sum())
    ordered = np.sort(acc)

    def expected_best(n: int) -> float:
        # P(max = k-th smallest) = [C(k, n) - C(k-1, n)] / C(N, n), computed in logs.
        k = np.arange(1, n_cells + 1)
        log_c = lambda a: np.where(a >= n, _log_comb(a, n), -np.inf)  # noqa: E731
        p = np.exp(log_c(k) - _log_comb(n_cells, n)) - np.exp(log_c(k - 1) - _log_comb(n_cells, n))
        return float((p * ordered).sum())

    def p_hit(n: int) -> float:
        from scipy.stats import hypergeom

        return 1.0 - float(hypergeom(n_cells, top, n).pmf(0))

    return {"expected_first_hit": (n_cells + 1) / (top + 1), "expected_best_50": expected_best(50),
            "expected_best_100": expected_best(100), "p_hit_within_50": p_hit(50), "p_hit_within_100": p_hit(100)}


def _log_comb(a, b):
    from scipy.special import gammaln

    a = np.asarray(a, dtype=float)
    return gammaln(a + 1) - gammaln(b + 1) - gammaln(np.maximum(a - b, 0) + 1)


def summarize(rows: list[dict], cap: int) -> dict:
    hits = [r["first_hit"] for r in rows]
    found = [h for h in hits if h is not None]
    levels = sorted({lv for r in rows for lv in r["extrapolation_all"]})
    return {
        "seeds": len(rows), "hit_by_cap": len(found),
        # A run with no hit by the cap counts as the cap: the mean is then a lower bound, flagged.
        "mean_first_hit": statistics.mean(h if h is not None else cap for h in hits),
        "mean_first_hit_is_lower_bound": len(found) < len(rows),
        "hit_within_50": sum(h is not None and h <= 50 for h in hits) / len(rows),
        "hit_within_100": sum(h is not None and h <= 100 for h in hits) / len(rows),
        "mean_best_50": statistics.mean(r["best_50"] for r in rows),
        "mean_best_100": statistics.mean(r["best_100"] for r in rows),
        "extrapolation_all_mean": {lv: statistics.mean(r["extrapolation_all"][lv] for r in rows
                                                       if lv in r["extrapolation_all"]) for lv in levels},
        "runs": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/pnas_efficiency.json"))
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--growths", default="nodes,edges")
    parser.add_argument("--predictors", default="lstm,mlp,both")
    parser.add_argument("--beams", default="8,16")
    parser.add_argument("--horizon", type=int, default=100)
    parser.add_argument("--cap", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-evolution", action="store_true")
    args = parser.parse_args()
    if not args.table.is_file():
        print(f"skipped: no NB201 table at {args.table} (pass --table)", file=sys.stderr)
        return
    acc = pd.read_csv(args.table)[METRIC].to_numpy()
    threshold = float(np.sort(acc)[::-1][int(round(TOP_FRACTION * len(acc))) - 1])  # the 157th best of 15,625
    settings = []
    for growth in args.growths.split(","):
        for predictor in args.predictors.split(","):
            for beam in (int(b) for b in args.beams.split(",")):
                levels = 3 if growth == "nodes" else 6
                settings.append(("pnas", {"growth": growth, "predictor": predictor, "beam": beam, "levels": levels}))
    if not args.no_evolution:
        settings.append(("evolution", {"population": 20, "sample": 5}))
    jobs = [(str(args.table), strategy, options, seed, args.horizon, args.cap, threshold)
            for strategy, options in settings for seed in range(args.seeds)]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        done = list(pool.map(one_seed, jobs))
    results = []
    for i, (strategy, options) in enumerate(settings):
        rows = done[i * args.seeds:(i + 1) * args.seeds]
        results.append({"strategy": strategy, **options, **summarize(rows, args.cap)})
    out = {"benchmark": "NB201 CIFAR-10 (cifar10_test_200ep), table evaluator: evaluations until the first top-1% "
                        "cell, best within 50/100 evaluations",
           "threshold": threshold, "top_cells": int((acc >= threshold).sum()), "cells": len(acc),
           "horizon": args.horizon, "cap": args.cap, "seeds": args.seeds,
           "random": random_expectations(acc, threshold), "settings": results}
    from nascli import atomic

    atomic.write_json(args.out, out)
    r = out["random"]
    print(f"random (exact): first hit {r['expected_first_hit']:.1f}, best@50 {r['expected_best_50']:.2f}, "
          f"best@100 {r['expected_best_100']:.2f}, P(hit<=50) {r['p_hit_within_50']:.0%}, "
          f"P(hit<=100) {r['p_hit_within_100']:.0%}")
    for st in results:
        name = (f"pnas {st['growth']:5} {st['predictor']:4} K={st['beam']:<3}" if st["strategy"] == "pnas"
                else "evolution P=20 S=5      ")
        flag = ">=" if st["mean_first_hit_is_lower_bound"] else ""
        per_seed = [r["first_hit"] for r in st["runs"]]
        print(f"{name} first hit {flag}{st['mean_first_hit']:.1f} {per_seed}, hit<=50 {st['hit_within_50']:.0%}, "
              f"best@50 {st['mean_best_50']:.2f}, best@100 {st['mean_best_100']:.2f}, "
              f"extrapolation {st['extrapolation_all_mean']}")
    print(f"wrote {args.out}; threshold {threshold} ({math.floor(TOP_FRACTION * 100)}%)")


if __name__ == "__main__":
    main()
