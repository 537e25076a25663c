"""Search efficiency on NAS-Bench-201: evaluations until a top-1% cell is first evaluated.

PNAS with the `table` evaluator versus random sampling on the same table, mean over seeds.
Needs the NB201 table (../shared/benchmarks/nb201/nb201_cifar10.csv or --table).

    python bench/pnas_efficiency.py --out bench/pnas_efficiency.json [--seeds 10] [--beams 8,32] [--predictors lstm,mlp]

A PNAS run that never evaluates a top-1% cell is a miss; its evaluations are reported with the
chance that random sampling would have hit one within the same number of evaluations.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path

import pandas as pd

from nascli import atomic
from nascli.commands.search import run_search
from nascli.config import compose

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TABLE = Path(os.environ.get("NASCLI_SHARED", REPO.parent / "shared")) / "benchmarks/nb201/nb201_cifar10.csv"
METRIC = "cifar10_test_200ep"
TOP_FRACTION = 0.01


def first_hit(scores: list[float], threshold: float) -> int | None:
    """1-based index of the first evaluation at or above threshold."""
    return next((i + 1 for i, s in enumerate(scores) if s >= threshold), None)


def pnas_run(table: Path, seed: int, beam: int, predictor: str, root: Path) -> list[float]:
    cfg = compose("search", ["strategy=pnas", "space=nb201", "strategy.evaluator=table", "strategy.levels=6",
                             f"strategy.beam={beam}", f"strategy.predictor.kind={predictor}",
                             f"benchmark.table={table}", f"benchmark.metric={METRIC}", f"seed={seed}",
                             "dataset=digits"])
    out = run_search(cfg, run_root=root, argv=["bench"], overrides=[])
    frame = pd.read_csv(out.run.path / "archs.csv")
    return frame.sort_values("evaluation")["score"].tolist()


def random_run(frame: pd.DataFrame, seed: int) -> list[float]:
    order = list(range(len(frame)))
    random.Random(seed).shuffle(order)
    return frame[METRIC].to_numpy()[order].tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/pnas_efficiency.json"))
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--beams", default="8,32")
    parser.add_argument("--predictors", default="lstm,mlp")
    args = parser.parse_args()
    if not args.table.is_file():
        print(f"skipped: no NB201 table at {args.table} (pass --table)", file=sys.stderr)
        return
    os.environ.setdefault("NASCLI_PROGRESS", "0")
    frame = pd.read_csv(args.table)
    ranked = frame[METRIC].sort_values(ascending=False).to_numpy()
    threshold = float(ranked[int(round(TOP_FRACTION * len(ranked))) - 1])  # the 157th best of 15,625
    n_top = int((frame[METRIC] >= threshold).sum())
    random_hits = [first_hit(random_run(frame, seed), threshold) for seed in range(args.seeds)]
    settings = []
    with tempfile.TemporaryDirectory() as tmp:
        for predictor in args.predictors.split(","):
            for beam in (int(b) for b in args.beams.split(",")):
                rows = []
                for seed in range(args.seeds):
                    scores = pnas_run(args.table, seed, beam, predictor, Path(tmp))
                    rows.append({"seed": seed, "first_hit": first_hit(scores, threshold), "evaluations": len(scores),
                                 "best": max(scores)})
                    print(f"{predictor} beam {beam} seed {seed}: first top-1% at {rows[-1]['first_hit']} "
                          f"of {len(scores)} evaluations, best {max(scores):.2f}")
                hits = [r["first_hit"] for r in rows if r["first_hit"] is not None]
                budget = statistics.mean(r["evaluations"] for r in rows)
                settings.append({
                    "predictor": predictor, "beam": beam, "evaluations": budget,
                    "hit_rate": len(hits) / len(rows),
                    "mean_first_hit_when_hit": statistics.mean(hits) if hits else None,
                    "mean_best": statistics.mean(r["best"] for r in rows),
                    # P(random sampling without replacement finds a top cell within the same budget)
                    "random_hit_rate_same_budget": 1 - float(hypergeom_miss(len(frame), n_top, round(budget))),
                    "runs": rows,
                })
    result = {
        "benchmark": "evaluations until the first top-1% NB201 cell (CIFAR-10, 200-epoch test accuracy)",
        "threshold": threshold, "top_cells": n_top, "cells": len(frame), "levels": 6, "seeds": args.seeds,
        "random_mean_first_hit": statistics.mean(random_hits), "random_runs": random_hits,
        "random_expected_first_hit": (len(frame) + 1) / (n_top + 1), "pnas": settings,
    }
    atomic.write_json(args.out, result)
    for st in settings:
        print(f"pnas {st['predictor']} beam {st['beam']}: {st['evaluations']:.0f} evaluations, hit rate "
              f"{st['hit_rate']:.0%} (random at the same budget {st['random_hit_rate_same_budget']:.0%}), "
              f"first hit {st['mean_first_hit_when_hit']}, best {st['mean_best']:.2f}")
    print(f"random: first hit after {result['random_mean_first_hit']:.1f} evaluations "
          f"(expected {result['random_expected_first_hit']:.1f}); wrote {args.out}")


def hypergeom_miss(cells: int, top: int, draws: int) -> float:
    """Chance that `draws` cells sampled without replacement contain none of the `top` cells."""
    from scipy.stats import hypergeom

    return float(hypergeom(cells, top, draws).pmf(0))


if __name__ == "__main__":
    main()
