"""Cells per second of `nas rank RUN` (a run's own estimator) against the naive loop, in the same process.

The naive loop is what scoring one cell costs without the executor path: restore the run's strategy from its
checkpoint (rebuild the HyperNet or supernet, reload the data), draw the recalibration and val batches, then
score the cell. nascli's path restores once, prepares the batches once (`scoring_inputs`), and scores chunks of
cells with the model built once per worker: in this process (`executor.workers=1`), and in a pool of one
single-threaded worker per core. Every path scores the same cells with the same val images; the bench checks that
they give the same scores.

    python bench/own_scoring.py --out bench/own_scoring.json [--runs RUN ...] [--cells 24]

Without --runs it first makes a smoke-budget SMASH and SNAS search on nb201 / digits in a temporary directory.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nascli import atomic  # noqa: E402
from nascli.commands.rank import restore_strategy  # noqa: E402
from nascli.executors import make_executor  # noqa: E402
from nascli.rundir import RunDir  # noqa: E402
from nascli.spaces import get_space  # noqa: E402
from nascli.strategy_scoring import make_setup, score_strategy_chunk  # noqa: E402


def smoke_runs(root: Path) -> list[Path]:
    from typer.testing import CliRunner

    from nascli.cli import app

    runs = []
    for strategy in ("smash", "snas"):
        res = CliRunner().invoke(app, ["search", f"strategy={strategy}", "space=nb201", "dataset=digits",
                                       "budget=smoke", "executor.workers=1", "--run-root", str(root / strategy)])
        if res.exit_code != 0:
            raise SystemExit(res.output)
        runs.append(next((root / strategy / "search").iterdir()))
    return runs


def naive(run: RunDir, space, archs, val_images: int) -> tuple[float, list[float]]:
    start = time.perf_counter()
    scores = []
    for arch in archs:
        strategy, ctx = restore_strategy(run, space, torch.device("cpu"))
        setup = make_setup(strategy, ctx, val_images)  # the batches, drawn for this cell alone
        scores.append(strategy.score_prepared([arch], setup.inputs, ctx)[0]["score"])
    return time.perf_counter() - start, scores


def prepared(run: RunDir, space, archs, val_images: int, workers: int, chunk: int) -> tuple[float, list[float]]:
    start = time.perf_counter()
    strategy, ctx = restore_strategy(run, space, torch.device("cpu"))
    setup = make_setup(strategy, ctx, val_images)
    executor = make_executor(OmegaConf.create({"name": "local", "workers": workers, "retries": 0}),
                             OmegaConf.create({"threads": 1}))
    tasks = [[a.genotype for a in archs[i:i + chunk]] for i in range(0, len(archs), chunk)]
    rows: list = [None] * len(tasks)
    for index, result in executor.run(score_strategy_chunk, setup, tasks):
        rows[index] = result
    return time.perf_counter() - start, [r["score"] for chunk_rows in rows for r in chunk_rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="*", type=Path, default=None, help="search runs whose estimator scores "
                        "(default: a smoke SMASH and SNAS search on nb201 / digits, made here)")
    parser.add_argument("--cells", type=int, default=24)
    parser.add_argument("--val-images", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/own_scoring.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    workers = max(1, len(__import__("os").sched_getaffinity(0)))
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs or smoke_runs(Path(tmp))
        results = []
        for path in runs:
            run = RunDir.open(path)
            space = get_space(run.config.space.name, run.config.space)
            rng = random.Random(0)
            archs = [space.sample(rng) for _ in range(args.cells)]
            times: dict[str, list[float]] = {"naive": [], "prepared_1": [], f"prepared_{workers}": []}
            scores = {}
            for _ in range(args.repeats):  # interleaved, so drift hits every path alike
                times["naive"].append((t := naive(run, space, archs, args.val_images))[0])
                scores["naive"] = t[1]
                times["prepared_1"].append((t := prepared(run, space, archs, args.val_images, 1, 8))[0])
                scores["prepared_1"] = t[1]
                times[f"prepared_{workers}"].append((t := prepared(run, space, archs, args.val_images, workers, 8))[0])
                scores[f"prepared_{workers}"] = t[1]
            median = {k: statistics.median(v) for k, v in times.items()}
            result = {"run": str(path) if args.runs else f"smoke {run.config.strategy.name} nb201 digits",
                      "strategy": run.config.strategy.name, "dataset": run.config.dataset.name, "cells": args.cells,
                      "val_images": args.val_images,
                      "cells_per_second": {k: args.cells / v for k, v in median.items()},
                      "speedup_vs_naive": {k: median["naive"] / v for k, v in median.items() if k != "naive"},
                      "same_scores": all(s == scores["naive"] for s in scores.values()), "seconds_all": times}
            results.append(result)
            print(f"{result['strategy']}: " + ", ".join(f"{k} {v:.2f} cells/s" for k, v in
                                                         result["cells_per_second"].items())
                  + " | " + ", ".join(f"{k} {v:.2f}x" for k, v in result["speedup_vs_naive"].items())
                  + f" | same scores: {result['same_scores']}", flush=True)
    atomic.write_json(args.out, {"benchmark": "own-estimator scoring, cells/s vs the naive loop, same process",
                                 "threads_per_worker": 1, "workers": workers, "torch": torch.__version__,
                                 "python": platform.python_version(), "results": results})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
