"""Does SMASH's HyperNet learn random architectures? Training accuracy on fresh ones, with one setting changed.

The same classes as `nas search strategy=smash` (Encoder, HyperNet, SmashMainNet, the membank sampler with its
budget and kernel annealing, Adam with the strategy's betas, eps and weight decay, per-step cosine), without the
CLI around them: batches drawn with replacement from digits' train split (no augmentation), one fresh
architecture and z per step. Reported: training accuracy over the last 150 steps (every one a new architecture)
and the mean, min and max val accuracy of 30 unseen architectures with generated weights. The switches isolate
what limits learning:

    --fixed-arch    one architecture for every step (what the network can learn at all)
    --free-1x1      freely learned, sliced 1x1 weights instead of the HyperNet's (is the HyperNet the limit?)
    --raw-slices    path convs without unit filters (the layout before issue 18)
    --only-3x3      kernels 3, dilation 1, groups 1 only (is the variety of shared convs the limit?)

    python bench/smash_learning.py --steps 600 [--lr 0.05] [--seed 0] [--threads 1] [switches]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time

import torch
import torch.nn.functional as F

from nascli.config import compose
from nascli.data import load_splits
from nascli.data.loader import TensorLoader
from nascli.spaces import get_space
from nascli.strategies.smash.encoding import Encoder
from nascli.strategies.smash.hypernet import HyperNet
from nascli.strategies.smash.mainnet import SmashMainNet, reaching
from nascli.strategies.smash.networks import learning_rate

LAST = 150  # steps whose training accuracy is reported
UNSEEN = 30  # fresh architectures scored on val at the end


class RawSlices(SmashMainNet):
    """Path conv weights sliced and cut as nascli does, but without unit filters."""

    def path_weight(self, block, op, path, conv, kdg, channels, size):
        (k, d, g), (i, o) = kdg, channels
        return reaching(self.conv_slot(block, op, path, conv)[:o, : i // g], k, d, size)


def normalised(split, splits) -> torch.Tensor:
    """The whole split as the loaders feed it to a network (float, normalised, no augmentation)."""
    return TensorLoader(split, len(split.y), splits.mean, splits.std).transform(split.x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--lr", type=float, default=None, help="default: the strategy's")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    for switch in ("fixed-arch", "free-1x1", "raw-slices", "only-3x3"):
        ap.add_argument(f"--{switch}", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    overrides = ["space.kernels=[3]", "space.dilations=[1]", "space.groups=[1]"] if args.only_3x3 else []
    cfg = compose("search", ["strategy=smash", "dataset=digits", *overrides])
    s = cfg.strategy
    lr = learning_rate(s, "membank") if args.lr is None else args.lr
    splits = load_splits(cfg.dataset)
    space = get_space("membank", cfg.space)
    encoder = Encoder(space.cfg)
    torch.manual_seed(args.seed)
    hypernet = HyperNet(encoder, int(s.hypernet.z_channels), int(s.hypernet.width), int(s.hypernet.depth))
    net = (RawSlices if args.raw_slices else SmashMainNet)(encoder, splits.shape, int(space.cfg.search.channels))
    max_in, max_width = encoder.max_in, encoder.max_width_units * encoder.unit
    free = torch.nn.ParameterList(torch.nn.Parameter(torch.randn(max_width, max_in, 1, 1) * 0.2)
                                  for _ in range(encoder.blocks * encoder.max_ops))

    def weights(arch, z):
        if not args.free_1x1:
            return hypernet(arch, encoder.encode(arch), z)
        return [[free[b * encoder.max_ops + j][: op["width"], : len(op["read"]) * block["bank_channels"]]
                 for j, op in enumerate(block["ops"])] for b, block in enumerate(arch.genotype["blocks"])]

    opt = torch.optim.Adam([{"params": [*hypernet.parameters(), *free.parameters()], "weight_decay": 0.0},
                            {"params": net.parameters(), "weight_decay": float(s.weight_decay)}],
                           lr=lr, betas=tuple(s.betas), eps=float(s.eps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * t / args.steps)))
    rng, g = random.Random(args.seed), torch.Generator().manual_seed(args.seed)
    fixed = space.sample(random.Random(args.seed + 123))
    x_train, y_train = normalised(splits.train, splits), splits.train.y
    correct = seen = 0
    started = time.perf_counter()
    for step in range(args.steps):
        idx = torch.randint(0, len(y_train), (int(s.batch_size),), generator=g)
        ramp = min(1.0, step / max(1.0, float(s.anneal_fraction) * args.steps))
        arch = fixed if args.fixed_arch else space.sample(rng, max_budget=0.5 + 0.5 * ramp,
                                                           max_kernel=3 + round(4 * ramp))
        logits = net(x_train[idx], arch, weights(arch, hypernet.noise(g)))
        loss = F.cross_entropy(logits, y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step >= args.steps - LAST:
            correct += (logits.argmax(1) == y_train[idx]).sum().item()
            seen += len(idx)
    x_val, y_val = normalised(splits.val, splits), splits.val.y
    unseen_rng = random.Random(args.seed + 99)
    with torch.no_grad():
        accs = []
        for _ in range(UNSEEN):
            arch = space.sample(unseen_rng)
            accs.append(100.0 * (net(x_val, arch, weights(arch, hypernet.noise(g))).argmax(1) == y_val)
                        .float().mean().item())
    print(json.dumps({"steps": args.steps, "lr": lr, "seed": args.seed,
                      "switches": [k for k in ("fixed_arch", "free_1x1", "raw_slices", "only_3x3") if getattr(args, k)],
                      f"train_acc_last_{LAST}": round(100.0 * correct / seen, 1),
                      "val_acc_unseen_mean": round(sum(accs) / len(accs), 1),
                      "val_acc_unseen_range": [round(min(accs), 1), round(max(accs), 1)],
                      "seconds": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
