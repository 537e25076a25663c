"""Latency of sampled architectures: how well FLOPs, params and the per-op lookup table order (and match) it.

Each of `--cells` uniformly sampled genotypes of `--space` (seed 0; darts by default) is built at the space's
retrain size (darts: C=16, 8 cells; membank: 16 stem channels, 3 blocks) for 32x32 RGB input and timed in eval mode, one intra-op thread unless --threads says otherwise. All the
networks are timed together in rounds (nascli.latency.interleaved_ms, median over `--repeats` rounds), twice:
the Spearman ρ between the two passes is the measurement's own repeatability, the ceiling for any predictor.
The per-op table (nascli.latency_table) is built from the same cells (every op at every slot they have) in
one set of rounds, and each cell's table sum (fixed part + its ops) is compared with the first pass: Spearman ρ, Kendall τ-b and the mean
relative error |table - measured| / measured. FLOPs and params are compared by Spearman ρ.

    python bench/latency.py --out bench/latency.json [--space darts] [--cells 200] [--threads 1] [--batches 1,64]
        [--repeats 10]

A membank (SMASH) network's fixed part (bank zeros, concatenations, additions) depends on its wiring, so its
skeletons rarely repeat: the table times one per network and shares only the conv units' entries.
"""

from __future__ import annotations

import argparse
import platform
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from nascli import atomic
from nascli.config import compose
from nascli.latency import LatencySettings, device_name, interleaved_ms, timing_input
from nascli.latency_table import LatencyTable
from nascli.measure import count_flops, count_params
from nascli.spaces import DataShape, get_space

NETWORKS_PER_ROUND = 16


def _rho(a, b) -> float:
    return round(float(stats.spearmanr(a, b).statistic), 3)


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/latency.json")
    ap.add_argument("--space", default="darts")
    ap.add_argument("--cells", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--batches", default="1,64", help="timed batch sizes, comma separated")
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    torch.set_num_threads(args.threads)
    cfg = compose("rank", [f"space={args.space}"])
    space = get_space(args.space, cfg.space)
    shape = DataShape(3, 32, 32, 10)
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(args.cells)]
    models = []
    for arch in archs:
        torch.manual_seed(0)
        models.append(space.build(arch, shape, cfg.space.retrain).eval())
    rows = [{"arch_id": a.arch_id, "params": count_params(m), "flops": count_flops(m, shape)}
            for a, m in zip(archs, models, strict=True)]
    size = ", ".join(f"{k}={v}" for k, v in cfg.space.retrain.items())
    result = {"what": f"measured latency vs FLOPs, params and the per-op table over sampled {args.space} architectures",
              "space": args.space, "network": f"{args.space} retrain size ({size}), 32x32x3, eval mode, float32",
              "cells": len(rows),
              "batches": batches, "seed": 0, "threads": args.threads, "repeats": args.repeats,
              "statistic": "median over rounds (every cell timed once per round)", "torch": torch.__version__,
              "machine": platform.machine(), "processor": device_name(torch.device("cpu"))}
    started = time.perf_counter()
    for batch in batches:
        settings = LatencySettings(batch, args.repeats, 2)
        runs = []
        for model in models:
            x = timing_input(model, batch, shape.channels, shape.height, shape.width)
            runs.append(lambda m=model, x=x: m(x))
        # Whole networks in rounds of NETWORKS_PER_ROUND: more distinct convolutions in one set of rounds than
        # oneDNN's primitive cache holds slow every network down (see nascli.latency.ROUND_SIZE).
        first = interleaved_ms(runs, torch.device("cpu"), settings, NETWORKS_PER_ROUND)
        second = interleaved_ms(runs, torch.device("cpu"), settings, NETWORKS_PER_ROUND)
        with tempfile.TemporaryDirectory() as root:
            table = LatencyTable.cached(space, settings, Path(root), torch.device("cpu"))
            table_started = time.perf_counter()
            predicted = table.predict_many(shape, cfg.space.retrain, archs, every_op=True)
            table_seconds = time.perf_counter() - table_started
        for row, a, b, p in zip(rows, first, second, predicted, strict=True):
            row.update({f"latency_ms_b{batch}": round(a, 4), f"latency_ms_b{batch}_again": round(b, 4),
                        f"table_ms_b{batch}": round(p, 4)})
        first_a, pred_a = np.array(first), np.array(predicted)
        result[f"b{batch}"] = {
            "latency_ms_range": [round(min(first), 2), round(max(first), 2)],
            "spearman_repeatability": _rho(first, second),
            "spearman_vs_flops": _rho(first, [r["flops"] for r in rows]),
            "spearman_vs_params": _rho(first, [r["params"] for r in rows]),
            "spearman_vs_table": _rho(first, predicted),
            "kendall_vs_table": round(float(stats.kendalltau(first, predicted).statistic), 3),
            "table_mean_relative_error": round(float(np.mean(np.abs(pred_a - first_a) / first_a)), 3),
            "table_entries": len(table.ops), "table_skeletons": len(table.skeletons),
            "table_fixed_ms_median": round(float(np.median(list(table.skeletons.values()))), 3),
            "table_seconds": round(table_seconds, 1)}
        print(f"batch {batch}: {result[f'b{batch}']}", flush=True)
    result["spearman_flops_vs_params"] = _rho([r["flops"] for r in rows], [r["params"] for r in rows])
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["rows"] = rows
    atomic.write_json(Path(args.out), result)


if __name__ == "__main__":
    main()
