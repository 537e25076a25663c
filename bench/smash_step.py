"""SMASH training step: nascli's sliced, cut convolutions vs the same step with plain ones, in one process.

nascli's main network slices every shared conv weight out of one tensor per (op slot, path, conv) and cuts
the taps of a dilated kernel that can only read zero padding (`reach`: a 7x7 conv with dilation 3 on a 2x2 map
is a 1x1). Three reference steps run the same architecture, the same generated 1x1 weights and the same batch:

- plain: each path conv weight its own tensor of exactly the conv's shape (unsliced) at its full kernel size
  (uncut): what the step would cost if every architecture had its own weights;
- masked: the shared slot tensors used at their full 7x7 size, the taps outside the sampled kernel zeroed by a
  mask (the usual way to share one weight across kernel sizes): uncut, and sliced on channels only;
- cut: plain's own exact-shape weights, cut as nascli cuts: nascli's convolutions without the shared tensors,
  so plain / cut is the largest speed-up over plain that slicing and cutting can give.

Every filter is divided by the norm of the taps that reach the map, as nascli's step does, so the three give the
same logits. Stem, 1x1s, transitions and head are nascli's. Each step is forward, cross-entropy backward and an
Adam update (the HyperNet and the weights the step uses); they are timed in rounds over the same sampled
architectures (every architecture once per round, median per architecture), so drift slows all alike, and
which of them runs an architecture first rotates with the round (the first pays for the new shapes). Reported
per reference: the median over architectures of reference time / nascli time, and the total-time ratio.

    python bench/smash_step.py [--dataset digits] [--archs 24] [--repeats 7] [--threads 1] [--out bench/results.json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from nascli import atomic
from nascli.config import compose
from nascli.data import load_splits
from nascli.spaces import get_space
from nascli.spaces.membank import op_channels, path_shapes
from nascli.strategies.smash.encoding import Encoder
from nascli.strategies.smash.hypernet import HyperNet
from nascli.strategies.smash.mainnet import SmashMainNet, crop, reaching, unit_filters


class PlainConvs(SmashMainNet):
    """The SMASH main network with each path conv's weight its own exact-shape tensor at full kernel size."""

    weights: dict = {}  # (block, op, path, conv) -> leaf tensor, set per architecture

    def path_weight(self, block, op, path, conv, kdg, channels, size):
        (k, d, _), w = kdg, self.weights[(block, op, path, conv)]
        return unit_filters(w, reaching(w, k, d, size))


class CutConvs(PlainConvs):
    """Plain's own exact-shape weights, cut to the taps that reach the map as nascli cuts: nascli's convolutions
    without the shared slot tensors. plain / cut is the most that slicing and cutting can ever buy here."""

    def path_weight(self, block, op, path, conv, kdg, channels, size):
        (k, d, _), w = kdg, self.weights[(block, op, path, conv)]
        return unit_filters(reaching(w, k, d, size))


class MaskedConvs(SmashMainNet):
    """The SMASH main network with each path conv at the slot's full 7x7, taps outside its kernel masked."""

    def path_weight(self, block, op, path, conv, kdg, channels, size):
        (k, d, g), (i, o) = kdg, channels
        w = self.conv_slot(block, op, path, conv)[:o, : i // g]
        full = w.shape[-1]
        mask = torch.zeros(full, full)
        mask[(full - k) // 2: (full + k) // 2, (full - k) // 2: (full + k) // 2] = 1
        w = w * mask
        return unit_filters(w, reaching(w, k, d, size))


def plain_weights(net: SmashMainNet, arch) -> dict:
    """Each path conv weight the architecture uses as its own leaf tensor of exactly its shape, full kernel."""
    w: dict = {}
    for b, block in enumerate(arch.genotype["blocks"]):
        for j, op in enumerate(block["ops"]):
            _, c_out = op_channels(block, op)
            for p, path in enumerate(op["paths"]):
                for q, ((k, _, g), (i, o)) in enumerate(zip(path, path_shapes(op["width"], c_out, path), strict=True)):
                    w[(b, j, p, q)] = crop(net.conv_slot(b, j, p, q)[:o, : i // g], k, k)
    return {key: t.detach().clone().requires_grad_(True) for key, t in w.items()}


def adam(*owners) -> torch.optim.Adam:
    """Adam over the modules' parameters and any extra tensors, as the SMASH strategy steps."""
    params = [t for o in owners for t in (o.parameters() if isinstance(o, torch.nn.Module) else o)]
    return torch.optim.Adam(params, lr=1e-9)


def step_of(net, hypernet, encoder, opt, x, y, z):
    def step(arch):
        loss = F.cross_entropy(net(x, arch, hypernet(arch, encoder.encode(arch), z)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--archs", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("bench/results.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = compose("search", ["strategy=smash", f"dataset={args.dataset}"])
    space = get_space("membank", cfg.space)
    splits = load_splits(cfg.dataset)
    encoder = Encoder(space.cfg)
    torch.manual_seed(0)
    h = cfg.strategy.hypernet
    hypernet = HyperNet(encoder, int(h.z_channels), int(h.width), int(h.depth))
    net = SmashMainNet(encoder, splits.shape, int(space.cfg.search.channels))
    plain_net, masked_net = PlainConvs(encoder, splits.shape, int(space.cfg.search.channels)), MaskedConvs(
        encoder, splits.shape, int(space.cfg.search.channels))
    cut_net = CutConvs(encoder, splits.shape, int(space.cfg.search.channels))
    for other in (plain_net, masked_net, cut_net):
        other.load_state_dict(net.state_dict())
    batch = int(cfg.strategy.batch_size)
    x, y = splits.train.x[:batch].float(), splits.train.y[:batch]
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(args.archs)]  # full budget, kernels up to 7: the second half
    z = hypernet.noise(torch.Generator().manual_seed(0))
    plain = [plain_weights(net, a) for a in archs]
    ours = step_of(net, hypernet, encoder, adam(hypernet, net),
                   x, y, z)
    masked = step_of(masked_net, hypernet, encoder,
                     adam(hypernet, masked_net), x, y, z)
    plain_steps = [step_of(plain_net, hypernet, encoder,
                           adam(hypernet, plain_net, p.values()),
                           x, y, z) for p in plain]
    cut = [plain_weights(net, a) for a in archs]
    cut_steps = [step_of(cut_net, hypernet, encoder,
                         adam(hypernet, cut_net, p.values()),
                         x, y, z) for p in cut]

    def reference(i):
        plain_net.weights = plain[i]
        plain_steps[i](archs[i])

    def reference_cut(i):
        cut_net.weights = cut[i]
        cut_steps[i](archs[i])

    with torch.no_grad():  # the same step: the cut taps only ever read zero padding, so the outputs agree
        differences = []
        for i, a in enumerate(archs):
            plain_net.weights, cut_net.weights = plain[i], cut[i]
            generated = hypernet(a, encoder.encode(a), z)
            logits = net(x, a, generated)
            differences.append(max(float((logits - other(x, a, generated)).abs().max())
                                   for other in (plain_net, masked_net, cut_net)))
    kinds = ("ours", "plain", "masked", "cut")
    times = {kind: [[] for _ in archs] for kind in kinds}
    for i, arch in enumerate(archs):  # warm-up: allocations, oneDNN primitives, Adam state
        ours(arch)
        reference(i)
        masked(arch)
        reference_cut(i)
    for r in range(args.repeats):
        for i, arch in enumerate(archs):
            steps = [("ours", lambda a=arch: ours(a)), ("plain", lambda k=i: reference(k)),
                     ("masked", lambda a=arch: masked(a)), ("cut", lambda k=i: reference_cut(k))]
            # Whichever step runs an architecture first after another one pays for the new shapes (oneDNN
            # primitives, allocations): ~12 ms of a ~45 ms step. Rotating who goes first shares that out.
            first = (r + i) % len(steps)
            for kind, step in steps[first:] + steps[:first]:
                started = time.perf_counter()
                step()
                times[kind][i].append(time.perf_counter() - started)
    medians = {kind: [statistics.median(t) for t in times[kind]] for kind in kinds}

    def versus(kind: str) -> dict:
        ratios = [r / o for r, o in zip(medians[kind], medians["ours"], strict=True)]
        return {f"{kind}_step_ms_median": round(1000 * statistics.median(medians[kind]), 2),
                f"speedup_vs_{kind}_median_over_archs": round(statistics.median(ratios), 2),
                f"speedup_vs_{kind}_total": round(sum(medians[kind]) / sum(medians["ours"]), 2),
                f"speedup_vs_{kind}_range": [round(min(ratios), 2), round(max(ratios), 2)]}

    result = {
        "what": "SMASH training step (HyperNet + main net forward, backward, Adam): reference time / nascli's "
                "(sliced, cut convs); plain = own exact-shape weights, full kernels; masked = shared 7x7 with "
                "kernel masks; cut = own exact-shape weights cut as nascli cuts (plain/cut bounds the speed-up)",
        "dataset": args.dataset, "input": [splits.shape.channels, splits.shape.height, splits.shape.width],
        "batch": batch, "archs": len(archs), "repeats": args.repeats, "threads": args.threads,
        "torch": torch.__version__,
        "ours_step_ms_median": round(1000 * statistics.median(medians["ours"]), 2),
        **versus("plain"), **versus("masked"), **versus("cut"),
        # The ceiling on speedup_vs_plain: plain over nascli's own convolutions without the shared tensors.
        "plain_over_cut_median_over_archs": round(statistics.median(
            [p / c for p, c in zip(medians["plain"], medians["cut"], strict=True)]), 2),
        "max_abs_logit_difference": max(differences),
    }
    print(json.dumps(result, indent=2))
    data = json.loads(args.out.read_text()) if args.out.exists() else {}
    data[f"smash_step_{args.dataset}"] = result
    atomic.write_json(args.out, data)


if __name__ == "__main__":
    main()
