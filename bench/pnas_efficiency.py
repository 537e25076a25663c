"""Search efficiency on NAS-Bench-201: evaluations until a top-1% cell is first evaluated.

PNAS with the `table` evaluator versus random sampling on the same table, mean over seeds.
Needs the NB201 table (../shared/benchmarks/nb201/nb201_cifar10.csv or --table).

    python bench/pnas_efficiency.py --out bench/pnas_efficiency.json [--seeds 10] [--beam 8]
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


def pnas_run(table: Path, seed: int, beam: int, root: Path) -> list[float]:
    cfg = compose("search", ["strategy=pnas", "space=nb201", "strategy.evaluator=table", "strategy.levels=6",
                             f"strategy.beam={beam}", f"benchmark.table={table}", f"benchmark.metric={METRIC}",
                             f"seed={seed}", "dataset=digits"])
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
    parser.add_argument("--beam", type=int, default=8)
    args = parser.parse_args()
    if not args.table.is_file():
        print(f"skipped: no NB201 table at {args.table} (pass --table)", file=sys.stderr)
        return
    os.environ.setdefault("NASCLI_PROGRESS", "0")
    frame = pd.read_csv(args.table)
    ranked = frame[METRIC].sort_values(ascending=False).to_numpy()
    threshold = float(ranked[int(round(TOP_FRACTION * len(ranked))) - 1])  # the 157th best of 15,625
    n_top = int((frame[METRIC] >= threshold).sum())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            p = first_hit(pnas_run(args.table, seed, args.beam, Path(tmp)), threshold)
            r = first_hit(random_run(frame, seed), threshold)
            rows.append({"seed": seed, "pnas": p, "random": r})
            print(f"seed {seed}: pnas {p} evaluations, random {r}")
    hits = [r["pnas"] for r in rows if r["pnas"] is not None]
    result = {
        "benchmark": "evaluations until the first top-1% NB201 cell (CIFAR-10, 200-epoch test accuracy)",
        "threshold": threshold, "top_cells": n_top, "cells": len(frame), "beam": args.beam, "levels": 6,
        "pnas_mean": statistics.mean(hits) if hits else None, "pnas_misses": len(rows) - len(hits),
        "random_mean": statistics.mean(r["random"] for r in rows),
        "random_expected": (len(frame) + 1) / (n_top + 1), "runs": rows,
    }
    atomic.write_json(args.out, result)
    print(f"pnas {result['pnas_mean']} (misses {result['pnas_misses']}), random {result['random_mean']:.1f} "
          f"(expected {result['random_expected']:.1f}); wrote {args.out}")


if __name__ == "__main__":
    main()
