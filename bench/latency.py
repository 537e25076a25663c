"""How well do FLOPs and parameter counts order measured latency? Spearman over sampled DARTS cells.

Each of `--cells` uniformly sampled DARTS genotypes (seed 0) is built at the retrain size (C=16, 8 cells)
for 32x32 RGB input, and timed in eval mode with nascli's latency measurement (each batch of --batches,
median of the repeats, one intra-op thread unless --threads says otherwise). Reported: Spearman ρ (scipy)
of latency against FLOPs and against params at each batch, with n.

    python bench/latency.py --out bench/latency.json [--cells 200] [--threads 1] [--batches 1,64] [--repeats 10]
"""

from __future__ import annotations

import argparse
import platform
import random
import time
from pathlib import Path

import torch
from scipy import stats

from nascli import atomic
from nascli.config import compose
from nascli.latency import LatencySettings, measure_latency_ms
from nascli.measure import count_flops, count_params
from nascli.spaces import DataShape, get_space


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/latency.json")
    ap.add_argument("--cells", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--batches", default="1,64", help="timed batch sizes, comma separated")
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    torch.set_num_threads(args.threads)
    cfg = compose("rank", ["space=darts"])
    space = get_space("darts", cfg.space)
    shape = DataShape(3, 32, 32, 10)
    rng = random.Random(0)
    rows = []
    started = time.perf_counter()
    for i in range(args.cells):
        arch = space.sample(rng)
        torch.manual_seed(0)
        model = space.build(arch, shape, cfg.space.retrain).eval()
        row = {"arch_id": arch.arch_id, "params": count_params(model), "flops": count_flops(model, shape)}
        for batch in batches:
            row[f"latency_ms_b{batch}"] = measure_latency_ms(model, shape, LatencySettings(batch, args.repeats, 2))
        rows.append(row)
        if (i + 1) % 20 == 0:
            print(f"{i + 1}/{args.cells} cells, {time.perf_counter() - started:.0f} s", flush=True)
    result = {"what": "Spearman rho of measured latency vs FLOPs and vs params over sampled DARTS cells",
              "network": "darts retrain size (C=16, 8 cells), 32x32x3, eval mode", "cells": len(rows), "batches": batches,
              "seed": 0, "threads": args.threads, "repeats": args.repeats, "statistic": "median",
              "torch": torch.__version__, "machine": platform.machine(),
              "seconds": round(time.perf_counter() - started, 1)}
    for batch in batches:
        lat = [r[f"latency_ms_b{batch}"] for r in rows]
        for cost in ("flops", "params"):
            rho = stats.spearmanr(lat, [r[cost] for r in rows])
            result[f"spearman_latency_b{batch}_vs_{cost}"] = round(float(rho.statistic), 3)
        result[f"latency_ms_b{batch}_range"] = [round(min(lat), 2), round(max(lat), 2)]
    result["spearman_flops_vs_params"] = round(float(stats.spearmanr([r["flops"] for r in rows],
                                                                      [r["params"] for r in rows]).statistic), 3)
    result["rows"] = rows
    print({k: v for k, v in result.items() if k != "rows"})
    atomic.write_json(Path(args.out), result)


if __name__ == "__main__":
    main()
