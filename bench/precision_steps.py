"""Training-step speed of nascli's networks under bf16 autocast and channels_last, as ratios to float32 NCHW.

Issue 31 asks for `device.amp=auto` / `device.channels_last=auto` that turn each on only where it is faster, by a
rule shipped with the code (never by timing at run time, which would make the precision, and so the result, depend
on machine noise). This bench measures what such a rule is derived from: one training step (forward, cross-entropy
in float32, backward, SGD with momentum) of each network nascli trains, in four variants:

- fp32: float32, NCHW (today's default);
- fp32_cl: float32, channels_last;
- bf16: bf16 autocast, NCHW;
- bf16_cl: bf16 autocast, channels_last.

SNAS's supernet step is timed the same way: a Gumbel-softmax sample of fixed α (drawn in float32, outside
autocast, as the strategy does) and a weight update, at the search size and `budget.search_batch_size`; with
channels_last only its inputs are NHWC, as in the strategy.

Each variant owns a copy of one initialisation. The variants are timed in rounds on the same batch (`steps` steps
per round, the order of the variants rotated every round, so drift and first-use costs hit them alike); reported
is the ratio of fp32's median step time to each variant's (> 1: faster than today).

    python bench/precision_steps.py [--threads 2] [--rounds 7] [--out bench/precision_steps.json]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import platform
import random
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from nascli import atomic
from nascli.config import compose
from nascli.precision import cpu_has_bf16
from nascli.spaces import DataShape, get_space
from nascli.strategies.smash.networks import build_networks, training_sample
from nascli.strategies.snas.relaxation import sample
from nascli.supernet import build_supernet

VARIANTS = {"fp32": (False, False), "fp32_cl": (False, True), "bf16": (True, False), "bf16_cl": (True, True)}

# (name, space, preset, size node, input channels, height, batch): the networks of nascli's training paths at
# their default CPU budgets. Retrains build `space.retrain`; random/pnas/evolution candidates `space.search`.
CASES = [
    ("nb201 best_cifar10 retrain (C=16 N=5), 32x32, batch 64", "nb201", "best_cifar10", "retrain", 3, 32, 64),
    ("darts DARTS_V2 retrain (C=16, 8 cells), 32x32, batch 32", "darts", "DARTS_V2", "retrain", 3, 32, 32),
    ("darts DARTS_V2 retrain on digits, 8x8, batch 64", "darts", "DARTS_V2", "retrain", 1, 8, 64),
    ("darts DARTS_V2 search candidate (C=8, 5 cells) on digits, 8x8, batch 64", "darts", "DARTS_V2", "search", 1,
     8, 64),
    ("nb201 resnet search candidate (C=8 N=1), 32x32, batch 64", "nb201", "resnet", "search", 3, 32, 64),
    ("nb201 best_cifar10 retrain (C=16 N=5) on digits, 8x8, batch 64", "nb201", "best_cifar10", "retrain", 1, 8, 64),
    ("nb201 resnet search candidate (C=8 N=1) on digits, 8x8, batch 64", "nb201", "resnet", "search", 1, 8, 64),
    ("pnas PNASNet retrain (C=16, 8 cells), 32x32, batch 32", "pnas", "PNASNet", "retrain", 3, 32, 32),
    ("pnas PNASNet search child (C=4, 3 cells) on digits, 8x8, batch 64", "pnas", "PNASNet", "search", 1, 8, 64),
    ("membank retrain (C=16) of a sampled arch on digits, 8x8, batch 64", "membank", "sample:0", "retrain", 1, 8, 64),
    ("membank retrain (C=16) of a sampled arch, 32x32, batch 32", "membank", "sample:0", "retrain", 3, 32, 32),
    ("snas supernet, darts search size (C=8, 5 cells), digits 8x8, batch 32", "darts", None, "supernet", 1, 8, 32),
    ("snas supernet, nb201 search size (C=8 N=1), 32x32, batch 32", "nb201", None, "supernet", 3, 32, 32),
    ("snas supernet, darts search size (C=8, 5 cells), 32x32, batch 32", "darts", None, "supernet", 3, 32, 32),
    ("snas supernet, nb201 search size (C=8 N=1), digits 8x8, batch 32", "nb201", None, "supernet", 1, 8, 32),
    ("smash HyperNet + main net (C=16), digits 8x8, batch 32", "membank", None, "hypernet", 1, 8, 32),
    ("smash HyperNet + main net (C=16), 32x32, batch 32", "membank", None, "hypernet", 3, 32, 32),
    ("smash HyperNet + main net, nb201 search size (C=8 N=1), digits 8x8, batch 32", "nb201", None, "hypernet", 1, 8,
     32),
    ("smash HyperNet + main net, nb201 search size (C=8 N=1), 32x32, batch 32", "nb201", None, "hypernet", 3, 32, 32),
]


class SupernetForward(torch.nn.Module):
    """SNAS's supernet under one Gumbel-softmax sample of fixed α per step."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net
        g = torch.Generator().manual_seed(0)
        self.alphas = {t: torch.randn(net.num_edges, len(net.ops), generator=g) * 1e-3 for t in net.cell_types}

    def forward(self, x):
        with torch.autocast("cpu", enabled=False):
            samples = {t: sample(a, 1.0, False) for t, a in self.alphas.items()}
        return self.net(x, samples)


class Step:
    """One SGD training step of `model` on (x, y) in one precision and layout."""

    def __init__(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, bf16: bool, channels_last: bool):
        layout = torch.channels_last if channels_last else torch.contiguous_format
        # SNAS keeps its supernet's parameters as built (grouped weights are viewed as batched matrices) and gets
        # channels_last inputs from the loader; fixed networks are converted whole, as Runtime.prepare does.
        keep = isinstance(model, SupernetForward | SmashForward)
        self.model = (model if keep else model.to(memory_format=layout)).train()
        self.x, self.y = x.contiguous(memory_format=layout), y
        self.bf16 = bf16
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)

    def __call__(self) -> None:
        train_step(self.model, self.opt, self.x, self.y, self.bf16)


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               bf16: bool = False) -> float:
    """Forward (under bf16 autocast if asked), float32 cross-entropy, backward, optimiser step; the loss."""
    precision = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with precision:
        out = model(x)
    logits = out[0] if isinstance(out, tuple) else out
    loss = F.cross_entropy(logits.float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


class SmashForward(torch.nn.Module):
    """SMASH's training step: the HyperNet generates the 1x1 weights of an architecture for the main network.
    As in the strategy, every step trains another architecture, drawn with the strategy's annealing (budget
    0.5 -> 1, kernels 3 -> 7 over the first half of training; here over the list, which spans a whole run), so
    each step meets new conv shapes as a real run does (a few architectures cycled would let oneDNN's primitive
    cache hide what bf16 costs per new shape). Every variant sees the same sequence; one z per step; the
    HyperNet's output normalisation stays float32 (as in the strategy)."""

    ARCHS = 240

    def __init__(self, space, shape: DataShape, hyper_cfg):
        super().__init__()
        self.nets = build_networks(space, shape, hyper_cfg)
        self.hypernet, self.mainnet = self.nets.generator, self.nets.mainnet
        rng = random.Random(0)
        self.archs = [training_sample(space, rng, min(1.0, i / (0.5 * self.ARCHS))) for i in range(self.ARCHS)]
        self.z = self.hypernet.noise(torch.Generator().manual_seed(0))
        self.calls = 0

    def forward(self, x):
        i = self.calls % len(self.archs)
        self.calls += 1
        return self.mainnet(x, self.archs[i], self.nets.weights(self.archs[i], self.z))


def build(space_name: str, preset: str, node: str, channels: int, size: int) -> torch.nn.Module:
    strategy = "smash" if space_name == "membank" or node == "hypernet" else "snas"
    cfg = compose("search", [f"space={space_name}", f"strategy={strategy}"])
    space = get_space(space_name, cfg.space)
    torch.manual_seed(0)
    shape = DataShape(channels, size, size, 10)
    if node == "supernet":
        return SupernetForward(build_supernet(space, shape, int(cfg.strategy.dense_max_pixels)))
    if node == "hypernet":
        return SmashForward(space, shape, cfg.strategy.hypernet)
    arch = space.sample(random.Random(int(preset.split(":")[1]))) if preset.startswith("sample:") else \
        space.preset(preset)
    return space.build(arch, shape, cfg.space[node])


def measure(case: tuple, rounds: int, steps: int) -> dict:
    name, space_name, preset, node, channels, size, batch = case
    model = build(space_name, preset, node, channels, size)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, channels, size, size, generator=generator)
    y = torch.randint(0, 10, (batch,), generator=generator)
    runs = {v: Step(copy.deepcopy(model), x, y, *flags) for v, flags in VARIANTS.items()}
    for step in runs.values():  # warm-up: oneDNN primitive caches, allocator
        step()
        step()
    times: dict[str, list[float]] = {v: [] for v in runs}
    order = list(runs)
    for r in range(rounds):
        for v in order[r % len(order):] + order[:r % len(order)]:
            start = time.perf_counter()
            for _ in range(steps):
                runs[v]()
            times[v].append((time.perf_counter() - start) / steps)
    median = {v: statistics.median(t) for v, t in times.items()}
    return {"case": name, "space": space_name, "preset": preset, "net": node, "input": [channels, size, size],
            "batch": batch, "step_seconds": median, "step_seconds_all": times,
            "speedup_vs_fp32": {v: median["fp32"] / median[v] for v in runs}}


def run_bench(description: str, measure, line, *, rounds: int, steps: int, out: Path, cases: list, **header) -> None:
    """The command line both precision benches share: --threads/--rounds/--steps/--out, each case measured and
    printed as `line(result)`, then one JSON file with the settings, versions and results."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (a lone run uses the machine's cores)")
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--steps", type=int, default=steps, help="steps per round and variant")
    parser.add_argument("--out", type=Path, default=out)
    parser.add_argument("--only", default=None, help="measure only the cases whose name contains one of these "
                        "|-separated texts, and replace those in --out (the other cases' results are kept)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kept = {}
    if args.only and args.out.exists():
        kept = {r["case"]: r for r in json.loads(args.out.read_text())["results"]}
    measured = {}
    for case in cases:
        if args.only and not any(part in case[0] for part in args.only.split("|")):
            continue
        measured[case[0]] = measure(case, args.rounds, args.steps)
        print(line(measured[case[0]]), flush=True)
    results = [measured.get(c[0], kept.get(c[0])) for c in cases if c[0] in measured or c[0] in kept]
    atomic.write_json(args.out, {
        **header, "threads": args.threads, "rounds": args.rounds, "steps_per_round": args.steps,
        "torch": torch.__version__, "python": platform.python_version(), "results": results,
    })
    print(f"wrote {args.out}")


def describe(r: dict) -> str:
    ratios = " | ".join(f"{v} {s:.2f}x" for v, s in r["speedup_vs_fp32"].items() if v != "fp32")
    return f"{r['case']}: fp32 {1000 * r['step_seconds']['fp32']:.1f} ms/step | {ratios}"


def main() -> None:
    run_bench(__doc__.splitlines()[0], measure, describe, rounds=7, steps=3, out=Path("bench/precision_steps.json"),
              cases=CASES,
              benchmark="training step under bf16 autocast / channels_last vs float32 NCHW, same process, interleaved",
              cpu_bf16=cpu_has_bf16(), cpu_capability=torch.backends.cpu.get_cpu_capability())


if __name__ == "__main__":
    main()
