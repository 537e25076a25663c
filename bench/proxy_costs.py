"""Seconds per NB201 cell of every network proxy alone, and of all of them on one shared probe, with one thread.

The networks are NB201's benchmark size (C=16, N=5) at 32x32 with 10 classes, freshly initialised (seed 0), on
uniformly sampled cells (seed 0); the batches are random images of CIFAR-10's shape at each proxy's paper batch
size (the cost depends on the shapes, not on the pixel values). Each proxy is timed over the same cells after one
warm-up cell, in one process, one thread, in the layout `nas rank` uses on this CPU (channels_last; `--nchw` for
the other).

    python bench/proxy_costs.py --cells 10 --set params,synflow,jacob_cov,meco,az_trainability \
        --set synflow,naswot,params --out bench/proxy_costs.json
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from nascli import atomic
from nascli.config import compose
from nascli.proxies import PROXIES, load_proxies
from nascli.proxies.scoring import ScoringSetup, score_chunk
from nascli.spaces import DataShape, get_space

SHAPE = DataShape(3, 32, 32, 10)


def setup_for(names: list[str], data, space_cfg, channels_last: bool = True) -> ScoringSetup:
    sizes = {n: PROXIES[n].batch_size for n in names}
    used = {b for b in sizes.values() if b is not None}
    return ScoringSetup("nb201", space_cfg, "retrain", SHAPE, names, sizes, {b: data[b] for b in used}, 0,
                        channels_last=channels_last)


def seconds_per_cell(setup: ScoringSetup, warmup: list[dict], cells: list[dict]) -> float:
    score_chunk(setup, warmup)
    start = time.perf_counter()
    score_chunk(setup, cells)
    return (time.perf_counter() - start) / len(cells)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=10)
    ap.add_argument("--set", action="append", help="also time these proxies together on one probe (a,b,c)")
    ap.add_argument("--nchw", action="store_true", help="time NCHW networks (default: channels_last, as nas rank)")
    ap.add_argument("--out", default="bench/proxy_costs.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    load_proxies()
    names = sorted(n for n, p in PROXIES.items() if not p.combined and n != "latency")
    space = get_space("nb201")
    space_cfg = OmegaConf.to_container(compose("rank", ["space=nb201"]).space)
    rng = random.Random(0)
    warmup = [space.sample(rng).genotype]
    cells = [space.sample(rng).genotype for _ in range(args.cells)]
    g = torch.Generator().manual_seed(0)
    sizes = {PROXIES[n].batch_size for n in names} - {None}
    data = {b: [(torch.randn(b, 3, 32, 32, generator=g), torch.randint(0, 10, (b,), generator=g))] for b in sizes}
    alone = {}
    for name in names:
        alone[name] = round(seconds_per_cell(setup_for([name], data, space_cfg, not args.nchw), warmup, cells), 4)
        print(f"{name:18s} {alone[name]:.3f} s/cell", flush=True)
    shared = round(seconds_per_cell(setup_for(names, data, space_cfg, not args.nchw), warmup, cells), 4)
    doc = {"cells": args.cells, "threads": 1, "network": "nb201 C=16 N=5, 32x32, 10 classes",
           "layout": "NCHW" if args.nchw else "channels_last",
           "torch": torch.__version__, "seconds_per_cell": alone, "all_on_one_probe": shared,
           "sum_of_alone": round(sum(alone.values()), 4), "sets_on_one_probe": {}}
    for members in args.set or []:
        chosen = setup_for(members.split(","), data, space_cfg, not args.nchw)
        doc["sets_on_one_probe"][members] = round(seconds_per_cell(chosen, warmup, cells), 4)
    atomic.write_json(Path(args.out), doc)
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
