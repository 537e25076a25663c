"""Zero-cost proxy scoring speed: the shared-probe path against the pre-probe implementation, same process.

For each proxy set, the same uniformly sampled NB201 cells (C=16, N=5: the network `nas rank` scores) are
scored by bench/reference_proxies.py (one pass per proxy, library pooling, a second build for the size
columns) and by nascli's score_chunk (one build, shared passes, fast pooling), alternating, with one
intra-op thread (what each worker of `executor.workers=2` gets on a 2-core machine). Reported: cells/s
of both, their ratio, the largest relative difference of any score (the two must agree), and the
projected wall time for all 15,625 cells with two workers. For the six proxies also the floor: the same
cells through only the passes every implementation of those scores must make (build, one forward, the
cross-entropy backward to the weights, the backward to the input), so reference / floor is the largest
speed-up any implementation at equal scores can reach on this machine.

    python bench/proxies.py --out bench/proxies.json [--cells 12]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nascli import atomic  # noqa: E402
from nascli.config import compose  # noqa: E402
from nascli.data import load_splits  # noqa: E402
from nascli.device import resolve  # noqa: E402
from nascli.executors import make_executor  # noqa: E402
from nascli.executors.base import usable_cores  # noqa: E402
from nascli.precision import ZERO_COST  # noqa: E402
from nascli.proxies.scoring import ScoringSetup, score_chunk  # noqa: E402
from nascli.spaces import get_space  # noqa: E402
from nascli.train import drawn_batches  # noqa: E402
from reference_proxies import reference_row  # noqa: E402

SHARED = Path(os.environ.get("NASCLI_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SETS = {
    "synflow": ["synflow"],
    "naswot": ["naswot"],
    "synflow+naswot+params": ["synflow", "naswot", "params"],
    "six": ["synflow", "naswot", "snip", "grad_norm", "jacob_cov", "params"],
}
NB201_CELLS = 15625


def nb201_bench(description: str, out: str, cells: int, proxies: str | None = None):
    """Parse --out/--cells (and --proxies, a comma list, when a default is given), use one thread, and load the
    NB201 space, its data (CIFAR-10 JPEG when ../shared has it, else digits) and `cells` uniformly sampled cells
    (seed 0)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--out", default=out)
    ap.add_argument("--cells", type=int, default=cells)
    if proxies is not None:
        ap.add_argument("--proxies", default=proxies, help="comma-separated network proxies")
    args = ap.parse_args()
    torch.set_num_threads(1)
    tarball = SHARED / "datasets" / "cifar10-jpeg.tar.gz"
    if tarball.is_file():
        overrides, data_name = ["dataset=cifar10_jpeg", f"dataset.root={tarball}", "dataset.subset=10000"], "cifar10_jpeg"
    else:
        overrides, data_name = ["dataset=digits"], "digits (../shared absent)"
    cfg = compose("rank", ["space=nb201", *overrides])
    space = get_space("nb201", cfg.space)
    rng = random.Random(0)
    return args, cfg, space, load_splits(cfg.dataset), [space.sample(rng) for _ in range(args.cells)], data_name


def batches_of(splits, runtime, size: int):
    """The batch `nas rank` scores on by default: a seeded, class-mixed draw from the train split."""
    return drawn_batches(splits.train, splits, size, 1, 0, runtime)[0]


def passes_floor(space, arch, shape, size, b64) -> None:
    """The passes every implementation of the six scores must make, and nothing else: build the network, one
    training-mode forward, the cross-entropy backward to the weights (snip, grad_norm) and the backward of the
    summed logits to the input (jacob_cov). No proxy arithmetic, no synflow, no naswot kernel: the fastest any
    implementation computing the same scores can be on this machine."""
    (x, y), = b64
    torch.manual_seed(0)
    model = space.build(arch, shape, size).to(memory_format=torch.channels_last).train()
    x = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    out = model(x)
    logits = out[0] if isinstance(out, tuple) else out
    torch.autograd.grad(F.cross_entropy(logits, y), list(model.parameters()), retain_graph=True, allow_unused=True)
    torch.autograd.grad(logits.sum(), x)


def whole_machine(cfg, space, splits, archs, b64) -> dict:
    """The six proxies as a user runs them, whole machine: the old path in one process with torch's default
    threads (all cores) against the new path on `executor.workers=2` (one thread each, pool start-up
    included)."""
    names = SETS["six"]
    sizes = {n: (None if n in ("synflow", "params") else 64) for n in names}
    setup = ScoringSetup("nb201", OmegaConf.to_container(cfg.space), "retrain", splits.shape, names, sizes, {64: b64}, 0,
                         channels_last=True)
    threads = usable_cores()
    torch.set_num_threads(threads)
    t = time.perf_counter()
    for arch in archs:
        reference_row(space, arch, splits.shape, cfg.space.retrain, b64, names, 0)
    ref_s = time.perf_counter() - t
    torch.set_num_threads(1)
    pool = make_executor(OmegaConf.create({"name": "local", "workers": "2"}), OmegaConf.create({"threads": None}))
    tasks = [[a.genotype for a in archs[i:i + 2]] for i in range(0, len(archs), 2)]
    t = time.perf_counter()
    first_at, first_cells = None, 0
    for _, rows in pool.run(score_chunk, setup, tasks):
        if first_at is None:  # the pool's start-up (spawning, importing torch) ends with the first result
            first_at, first_cells = time.perf_counter(), len(rows)
    new_s = time.perf_counter() - t
    steady = (len(archs) - first_cells) / (t + new_s - first_at)
    case = {"set": "six, whole machine", "cells": len(archs),
            "reference": f"one process, {threads} threads", "new": "executor.workers=2, 1 thread each",
            "reference_cells_per_s": round(len(archs) / ref_s, 3), "cells_per_s": round(len(archs) / new_s, 3),
            "speedup": round(ref_s / new_s, 2), "steady_cells_per_s": round(steady, 3),
            "steady_speedup": round(steady * ref_s / len(archs), 2),
            "pool_start_and_first_chunk_s": round(first_at - t, 1)}
    print(case, flush=True)
    return case


def main() -> None:
    args, cfg, space, splits, archs, data_name = nb201_bench(__doc__.splitlines()[0], "bench/proxies.json", 12)
    runtime = resolve(cfg.device, ZERO_COST, splits.shape, space.name)
    b64 = batches_of(splits, runtime, 64)
    results = []
    for label, names in SETS.items():
        sizes = {n: (None if n in ("synflow", "params") else 64) for n in names}
        setup = ScoringSetup("nb201", OmegaConf.to_container(cfg.space), "retrain", splits.shape, names, sizes,
                             {64: b64} if any(sizes.values()) else {}, 0, channels_last=True)
        ref_s = new_s = floor_s = 0.0
        worst = {n: 0.0 for n in names}
        for i, arch in enumerate(archs):  # alternate, so drift on a shared machine hits all alike
            out, spent = {}, {"ref": 0.0, "new": 0.0, "floor": 0.0}
            runs = [("ref", lambda a=arch, n=names: reference_row(space, a, splits.shape, cfg.space.retrain, b64, n, 0)),
                    ("new", lambda a=arch, s=setup: score_chunk(s, [a.genotype])[0])]
            if label == "six":
                runs.append(("floor", lambda a=arch: passes_floor(space, a, splits.shape, cfg.space.retrain, b64)))
            first = i % len(runs)  # who meets a cell first rotates: the first pays for any new shapes
            for key, run in runs[first:] + runs[:first]:
                t = time.perf_counter()
                out[key] = run()
                spent[key] = time.perf_counter() - t
            ref, new = out["ref"], out["new"]
            ref_s, new_s, floor_s = ref_s + spent["ref"], new_s + spent["new"], floor_s + spent["floor"]
            for n in names:
                a, b = ref[n], new[n]
                if abs(a) != float("inf") and a == a:
                    worst[n] = max(worst[n], abs(a - b) / max(abs(a), 1e-12))
        case = {"set": label, "proxies": names, "cells": len(archs), "threads": 1,
                "reference_cells_per_s": round(len(archs) / ref_s, 3), "cells_per_s": round(len(archs) / new_s, 3),
                "speedup": round(ref_s / new_s, 2), "max_relative_difference": worst,
                "projected_all_nb201_two_workers_min": round(NB201_CELLS / (2 * len(archs) / new_s) / 60, 1)}
        if floor_s:
            # The ceiling on any speed-up at equal scores: the reference over the unavoidable passes alone.
            case.update(floor_cells_per_s=round(len(archs) / floor_s, 3), floor_speedup=round(ref_s / floor_s, 2),
                        share_of_floor=round(floor_s / new_s, 2))
        print(case, flush=True)
        results.append(case)
    # Each proxy at its paper batch (naswot 128): what `nas rank` does by default.
    names = ["synflow", "naswot", "params"]
    setup = ScoringSetup("nb201", OmegaConf.to_container(cfg.space), "retrain", splits.shape, names,
                         {"synflow": None, "naswot": 128, "params": None}, {128: batches_of(splits, runtime, 128)}, 0,
                         channels_last=True)
    t = time.perf_counter()
    score_chunk(setup, [a.genotype for a in archs])
    paper_s = time.perf_counter() - t
    paper = {"set": "synflow+naswot(128)+params", "cells": len(archs), "cells_per_s": round(len(archs) / paper_s, 3),
             "projected_all_nb201_two_workers_min": round(NB201_CELLS / (2 * len(archs) / paper_s) / 60, 1)}
    print(paper, flush=True)
    results.append(paper)
    rng = random.Random(1)  # more cells, so the pool's start-up is a small part of the wall time
    results.append(whole_machine(cfg, space, splits, archs + [space.sample(rng) for _ in range(24)], b64))
    doc = {"what": "zero-cost proxy scoring, shared probe vs the pre-probe implementation (bench/reference_proxies.py)",
           "network": "nb201 C=16 N=5 (retrain size), 32x32" if "cifar" in data_name else "nb201 C=16 N=5, digits 8x8",
           "data": data_name, "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
           "cores": os.cpu_count(), "results": results}
    atomic.write_json(Path(args.out), doc)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
