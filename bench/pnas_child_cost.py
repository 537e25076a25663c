"""What one paper-size PNAS child costs to train: the number behind the README's SLURM wall-time estimate.

A level-2 child of the pnas space at PNAS's child size (F=24, N=2 -> 8 cells, batch 96, CIFAR-10 32x32),
SGD steps timed on this machine's CPU, extrapolated to 20 epochs of 50,000 images. Also FLOPs per image
(torch.utils.flop_counter), so a user can scale to their GPU. Written into bench/results.json
under `pnas_child_cost`.

    python bench/pnas_child_cost.py [--steps 6] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from nascli import atomic
from nascli.config import compose
from nascli.measure import count_flops
from nascli.spaces import DataShape, get_space
from nascli.strategies.pnas.growth import growth_for

EPOCHS, IMAGES, BATCH, LEVEL2_K, GPUS = 20, 50_000, 96, 256, 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/results.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = compose("search", ["strategy=pnas", "space=pnas"])
    space = get_space("pnas", cfg.space)
    growth = growth_for(space)
    torch.manual_seed(0)
    level1 = growth.level1()
    child = growth.expand(level1[len(level1) // 2])[0]  # a typical level-2 cell (two blocks)
    shape = DataShape(3, 32, 32, 10)
    net = space.build(child, shape, OmegaConf.create({"channels": 24, "layers": 8, "stem_multiplier": 3}))
    opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9)
    x, y = torch.randn(BATCH, 3, 32, 32), torch.randint(0, 10, (BATCH,))

    def step():
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up (allocations, oneDNN primitives)
    times = []
    for _ in range(args.steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    step_s = statistics.median(times)
    child_s = step_s * (IMAGES / BATCH) * EPOCHS
    rounds = -(-LEVEL2_K // GPUS)
    result = {
        "cell": space.describe(child), "params": sum(p.numel() for p in net.parameters()),
        "flops_per_image": count_flops(net.eval(), shape), "batch": BATCH, "threads": args.threads,
        "step_seconds_median": round(step_s, 4), "steps_timed": args.steps,
        "child_seconds_cpu_20_epochs": round(child_s, 1),
        "level2_k256_on_16_workers_hours_at_cpu_speed": round(rounds * child_s / 3600, 1),
        "note": "CPU figures only (no GPU available); a GPU's t_child replaces child_seconds_cpu_20_epochs",
    }
    print(json.dumps(result, indent=2))
    data = json.loads(args.out.read_text()) if args.out.exists() else {}
    data["pnas_child_cost"] = result
    atomic.write_json(args.out, data)


if __name__ == "__main__":
    main()
