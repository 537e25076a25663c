"""Batch-statistic evaluation: does a score depend on which val images share a batch, and which fix to take?

SMASH's main network always normalises with the batch's own statistics, and SNAS's `supernet_acc` evaluates
the stochastic supernet with batch statistics. Splits are stored class-sorted, so evaluated in stored order a
batch holds one or two classes and its statistics carry their labels. Three ways to evaluate, compared on the
same trained model:

    sorted      val in stored (class-sorted) order: the old protocol
    random      val in one fixed random order (two different orders, to see how much the order itself moves
                a score)
    frozen      statistics frozen from class-mixed training batches (SMASH: one draw of `--calib` training
                images per architecture and z; SNAS: the supernet's BN recalibrated over fresh samples on
                `--calib` training images), then every val image judged alone; two different draws (seeds 0
                and 1), to see how much the draw itself moves a score

Reported per mode: mean val accuracy, and between modes the Spearman ρ / Kendall τ of the architectures'
scores (SMASH) and the mean absolute difference, plus seconds per architecture.

    nas search strategy=smash dataset=cifar10_jpeg dataset.subset=10000 dataset.resize=16 strategy.epochs=6 \\
        strategy.candidates=40                                           # val: 1,000 images, batches of 512
    python bench/bn_eval_order.py --smash runs/search/<run> [--snas runs/search/<snas nb201 run>] \\
        --out bench/bn_eval_order.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import stats

from nascli import atomic
from nascli.arch_io import read_arch_file
from nascli.data import load_splits
from nascli.data.draws import shuffled
from nascli.device import resolve, seed_everything
from nascli.rundir import RunDir, load_checkpoint
from nascli.spaces import get_space
from nascli.strategies.base import SearchContext, strategy_class
from nascli.strategies.smash import mainnet as smash_mainnet
from nascli.train import drawn_batches, make_loader


class FrozenStats:
    """Stands in for SMASH's batch-statistic `bn`: `record` on a calibration batch keeps each call's mean and
    variance (the forward pass calls bn in the same order for one architecture), `replay` normalises with
    them, so each val image is judged on its own."""

    def __init__(self):
        self.mode, self.stats, self.at = "record", [], 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "record":
            self.stats.append((x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=False)))
            return F.batch_norm(x, None, None, training=True)
        mean, var = self.stats[self.at]
        self.at += 1
        return F.batch_norm(x, mean, var, training=False)


def _context(run: RunDir):
    cfg = run.config
    generator = seed_everything(int(cfg.seed))
    space = get_space(cfg.space.name, cfg.space)
    splits = load_splits(cfg.dataset)
    strategy_cls = strategy_class(cfg.strategy.name)
    runtime = resolve(cfg.device, strategy_cls.workload, splits.shape, space.name)
    blob = load_checkpoint(run.checkpoint(RunDir.STRATEGY_CKPT))
    strategy = strategy_cls(cfg.strategy)
    strategy.load_state_dict(blob["state"])
    strategy.restored_state()
    ctx = SearchContext(cfg, space, splits, runtime, generator, run=None)
    return cfg, ctx, strategy


def _compare(scores: dict[str, list[float]], seconds: dict[str, float], n: int) -> dict:
    modes = list(scores)
    out = {"archs": n, "mean_acc": {m: round(float(np.mean(v)), 3) for m, v in scores.items()},
           "seconds_per_arch": {m: round(s / n, 4) for m, s in seconds.items()}, "pairs": {}}
    for i, a in enumerate(modes):
        for b in modes[i + 1:]:
            x, y = np.array(scores[a]), np.array(scores[b])
            pair = {"mean_abs_diff": round(float(np.abs(x - y).mean()), 3)}
            if n >= 3:
                pair.update(spearman=round(float(stats.spearmanr(x, y).statistic), 4),
                            kendall=round(float(stats.kendalltau(x, y).statistic), 4))
            out["pairs"][f"{a} vs {b}"] = pair
    return out


def _frozen_accuracy(strategy, encoder, arch, noises, calib_batch, val) -> float:
    """SMASH's val accuracy with each BN's statistics taken from `calib_batch` (training images), mean over z."""
    accs = []
    real_bn = smash_mainnet.bn
    try:
        for z in noises:
            weights = strategy.hypernet(arch, encoder.encode(arch), z)
            frozen = smash_mainnet.bn = FrozenStats()
            strategy.mainnet(calib_batch[0], arch, weights)
            frozen.mode = "replay"
            correct = seen = 0
            for x, y in val:  # the order no longer matters: every image is judged alone
                frozen.at = 0
                correct += (strategy.mainnet(x, arch, weights).argmax(1) == y).sum().item()
                seen += len(y)
            accs.append(100.0 * correct / seen)
    finally:
        smash_mainnet.bn = real_bn
    return sum(accs) / len(accs)


@torch.no_grad()
def smash(run_path: str, archs_n: int, calib: int) -> dict:
    run = RunDir.open(run_path)
    cfg, ctx, strategy = _context(run)
    encoder = strategy._build(ctx)
    strategy.hypernet.eval()
    strategy.mainnet.eval()
    ids = pd.read_csv(run.path / RunDir.ARCHS)["arch_id"].tolist()[:archs_n]
    archs = [read_arch_file(run.arch_file(a)) for a in ids]
    noises = strategy._noises(ctx, int(cfg.strategy.noise_samples))
    bs = int(cfg.strategy.val_batch_size)
    val = ctx.splits.val
    loaders = {"sorted": make_loader(val, ctx.splits, bs, ctx.runtime, train=False),
               "random_0": make_loader(shuffled(val, 0), ctx.splits, bs, ctx.runtime, train=False),
               "random_1": make_loader(shuffled(val, 1), ctx.splits, bs, ctx.runtime, train=False)}
    calib_batches = {f"frozen_{seed}": drawn_batches(ctx.splits.train, ctx.splits, calib, 1, seed, ctx.runtime)[0][0]
                     for seed in (0, 1)}
    scores = {m: [] for m in [*loaders, *calib_batches]}
    seconds = dict.fromkeys(scores, 0.0)
    for arch in archs:
        for mode, loader in loaders.items():
            started = time.perf_counter()
            scores[mode].append(strategy._accuracy(arch, encoder, noises, loader, scrambled=False))
            seconds[mode] += time.perf_counter() - started
        for mode, calib_batch in calib_batches.items():
            started = time.perf_counter()
            scores[mode].append(_frozen_accuracy(strategy, encoder, arch, noises, calib_batch, loaders["sorted"]))
            seconds[mode] += time.perf_counter() - started
    out = _compare(scores, seconds, len(archs))
    out.update(run=str(run.path), val_images=len(val), val_batch=bs, calib_images=calib,
               first_sorted_batch_classes=int(len(torch.unique(next(iter(loaders["sorted"]))[1]))))
    return out


@torch.no_grad()
def snas(run_path: str, passes: int, calib: int) -> dict:
    from nascli.strategies.snas.relaxation import sample
    from nascli.supernet.evaluate import accuracy, supernet_accuracy

    run = RunDir.open(run_path)
    cfg, ctx, strategy = _context(run)
    strategy._build(ctx)
    net, rt = strategy.net, ctx.runtime
    tau = float(cfg.strategy.tau_final)
    val = ctx.splits.val
    loaders = {"sorted": make_loader(val, ctx.splits, 128, rt, train=False),
               "random_0": make_loader(shuffled(val, 0), ctx.splits, 128, rt, train=False),
               "random_1": make_loader(shuffled(val, 1), ctx.splits, 128, rt, train=False)}
    out = {"run": str(run.path), "val_images": len(val), "val_batch": 128, "passes": passes, "supernet_acc": {},
           "seconds": {}}
    for mode, loader in loaders.items():
        gen = torch.Generator().manual_seed(0)
        started = time.perf_counter()
        acc = supernet_accuracy(net, loader, lambda g=gen: {t: sample(a, tau, False, g)
                                                            for t, a in strategy.alphas.items()}, passes, rt)
        out["supernet_acc"][mode], out["seconds"][mode] = round(acc, 3), round(time.perf_counter() - started, 2)
    for seed in (0, 1):
        calib_batches, _ = drawn_batches(ctx.splits.train, ctx.splits, 128, max(1, calib // 128), seed, rt)
        gen = torch.Generator().manual_seed(0)
        started = time.perf_counter()
        accs = []
        with net.recalibrating():
            for _ in range(passes):
                net.train()
                for i, (x, _) in enumerate(calib_batches):
                    net.set_bn_momentum(1.0 / (i + 1))
                    net(x, {t: sample(a, tau, False, gen) for t, a in strategy.alphas.items()})
                accs.append(accuracy(net, loaders["sorted"], lambda g=gen: {t: sample(a, tau, False, g)
                                                                            for t, a in strategy.alphas.items()}, rt))
        out["supernet_acc"][f"frozen_{seed}"] = round(sum(accs) / len(accs), 3)
        out["seconds"][f"frozen_{seed}"] = round(time.perf_counter() - started, 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smash", help="a finished SMASH search run (val larger than strategy.val_batch_size)")
    ap.add_argument("--snas", help="a finished SNAS search run")
    ap.add_argument("--archs", type=int, default=40)
    ap.add_argument("--calib", type=int, default=512, help="training images the frozen statistics come from")
    ap.add_argument("--passes", type=int, default=4, help="SNAS: supernet_acc passes (fresh samples) averaged")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="bench/bn_eval_order.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    doc = {"command": "python bench/bn_eval_order.py " + " ".join(
        f"--{k} {v}" for k, v in vars(args).items() if v is not None and k != "out")}
    if args.smash:
        doc["smash"] = smash(args.smash, args.archs, args.calib)
    if args.snas:
        doc["snas"] = snas(args.snas, args.passes, args.calib)
    atomic.write_json(Path(args.out), doc)
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
