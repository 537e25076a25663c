"""Training-step speed of nascli's cropped convolutions and fused SGD, as ratios against the same step without
them, interleaved in one process.

`spaces/cropped_conv.py` skips the kernel taps that only read padding (exact: the same outputs and gradients);
`train.sgd` / `train.clip_gradients` use PyTorch's fused SGD and foreach clipping (bit-identical). The
reference is the same network and batches with every tap computed and the per-tensor SGD loop: what nascli
ran before. Networks at the sizes nascli trains them, precision and layout as `device=auto` picks on this CPU:

- the DARTS cell `make run` finds on digits (c0f4109761d9), as retrained (C=16, 8 cells) and as a search
  candidate (C=8, 5 cells), batch 64;
- DARTS_V2 on digits (batch 64) and at 32x32 (batch 32, where nothing is cropped: the guard against a slowdown);
- the SNAS DARTS supernet on digits (C=8, 5 cells, batch 64, one θ step).

    python bench/cropped_conv.py --out bench/cropped_conv.json
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from nascli import atomic
from nascli.arch import Arch
from nascli.arch_io import resolve_arch
from nascli.config import compose
from nascli.device import NETWORK, resolve
from nascli.precision import SUPERNET
from nascli.spaces import DataShape, cropped_conv, get_space
from nascli.strategies.snas.relaxation import sample
from nascli.supernet import build_supernet
from nascli.train import clip_gradients, sgd

MAKE_RUN_CELL = {"normal": [[["avg_pool_3x3", 0], ["dil_conv_3x3", 1]], [["sep_conv_3x3", 0], ["skip_connect", 1]],
                            [["dil_conv_5x5", 0], ["avg_pool_3x3", 3]], [["sep_conv_5x5", 0], ["dil_conv_5x5", 1]]],
                 "normal_concat": [2, 3, 4, 5],
                 "reduce": [[["max_pool_3x3", 0], ["dil_conv_3x3", 1]], [["sep_conv_3x3", 0], ["max_pool_3x3", 2]],
                            [["sep_conv_5x5", 0], ["max_pool_3x3", 2]], [["avg_pool_3x3", 0], ["dil_conv_3x3", 1]]],
                 "reduce_concat": [2, 3, 4, 5]}
DIGITS = DataShape(1, 8, 8, 10)
CIFAR = DataShape(3, 32, 32, 10)


def all_taps(size, kernel, dilation, padding):
    return 0, kernel - 1


class Step:
    """One training step (forward, loss, backward, clipping, SGD) of `net` on fixed batches."""

    def __init__(self, net, runtime, x, y, fast: bool, alphas=None):
        self.net, self.runtime, self.x, self.y, self.fast, self.alphas = net, runtime, x, y, fast, alphas
        settings = {"lr": 0.01, "momentum": 0.9, "weight_decay": 3e-4}
        self.opt = sgd(net.parameters(), **settings) if fast else torch.optim.SGD(net.parameters(), **settings)

    def __call__(self):
        reach = cropped_conv.reaching_taps
        if not self.fast:
            cropped_conv.reaching_taps = all_taps
        try:
            with self.runtime.autocast():
                if self.alphas is None:
                    logits = self.net(self.x)
                else:
                    logits = self.net(self.x, {t: sample(a, 1.0, False) for t, a in self.alphas.items()})
                loss = F.cross_entropy(logits.float(), self.y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            if self.fast:
                clip_gradients(self.net.parameters(), 5.0)
            else:
                nn.utils.clip_grad_norm_(self.net.parameters(), 5.0)
            self.opt.step()
        finally:
            cropped_conv.reaching_taps = reach


def network_case(name: str, arch: Arch, shape: DataShape, size: str, batch: int) -> tuple[str, dict, object]:
    cfg = compose("retrain", ["space=darts"])
    runtime = resolve(cfg.device, NETWORK, shape, "darts")
    net_cfg = cfg.space.retrain if size == "retrain" else cfg.space.search
    torch.manual_seed(0)
    x = torch.randn(batch, shape.channels, shape.height, shape.width).contiguous(
        memory_format=torch.channels_last if runtime.channels_last else torch.contiguous_format)
    y = torch.randint(0, shape.num_classes, (batch,))
    steps = {}
    for fast in (False, True):
        torch.manual_seed(0)
        net = runtime.prepare(get_space("darts").build(arch, shape, net_cfg)).train()
        steps["fast" if fast else "reference"] = Step(net, runtime, x, y, fast)
    return name, steps, runtime


def supernet_case(batch: int):
    cfg = compose("search", ["space=darts", "strategy=snas", "dataset=digits"])
    runtime = resolve(cfg.device, SUPERNET, DIGITS, "darts")
    torch.manual_seed(0)
    x, y = torch.randn(batch, 1, 8, 8), torch.randint(0, 10, (batch,))
    edges = sum(2 + i for i in range(4))
    steps = {}
    for fast in (False, True):
        torch.manual_seed(0)
        net = build_supernet(get_space("darts", cfg.space), DIGITS).train()
        alphas = {t: torch.zeros(edges, 8).requires_grad_() for t in ("normal", "reduce")}
        steps["fast" if fast else "reference"] = Step(net, runtime, x, y, fast, alphas)
    return f"snas_darts_supernet_digits_b{batch}", steps, runtime


def seconds_per_step(step, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        step()
    return (time.perf_counter() - start) / count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="bench/cropped_conv.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    make_run = get_space("darts").make(MAKE_RUN_CELL)
    v2 = resolve_arch("darts:DARTS_V2")
    cases = [network_case("make_run_cell_retrain_digits_b64", make_run, DIGITS, "retrain", 64),
             network_case("make_run_cell_candidate_digits_b64", make_run, DIGITS, "search", 64),
             network_case("darts_v2_retrain_digits_b64", v2, DIGITS, "retrain", 64),
             network_case("darts_v2_retrain_32x32_b32", v2, CIFAR, "retrain", 32),
             supernet_case(64)]
    rows = []
    for name, steps, runtime in cases:
        for step in steps.values():  # warm-up: allocator, oneDNN primitive caches
            step()
        times = {k: [] for k in steps}
        for _ in range(args.repeats):  # interleaved, so machine noise hits both alike
            for k, step in steps.items():
                times[k].append(seconds_per_step(step, args.steps))
        median = {k: statistics.median(v) for k, v in times.items()}
        row = {"case": name, "precision": runtime.describe(), "ms_per_step": {k: 1e3 * v for k, v in median.items()},
               "speedup": median["reference"] / median["fast"]}
        rows.append(row)
        print(f"{name:40s} {runtime.describe():28s} reference {row['ms_per_step']['reference']:7.1f} ms  "
              f"fast {row['ms_per_step']['fast']:7.1f} ms  {row['speedup']:.2f}x", flush=True)
    atomic.write_json(args.out, {
        "benchmark": "training step with cropped convolutions + fused SGD vs every tap + per-tensor SGD",
        "threads": args.threads, "repeats": args.repeats, "steps_per_repeat": args.steps,
        "torch": torch.__version__, "python": platform.python_version(), "results": rows})


if __name__ == "__main__":
    main()
