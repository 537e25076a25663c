"""torch.compile on the retrain path: steady step speed-up, compile time, and the steps it takes to pay off.

Issue 31 asks for torch.compile to be tried on the retrain path and reported whether or not it wins, with the
compile time counted. Each network of nascli's retrains (float32, NCHW, today's default) is trained in two copies
of one initialisation: eager, and with `torch.compile(model)` (inductor, the default backend). The compiled copy's
first steps (tracing, code generation, C++ compilation) are timed separately; then both are timed in interleaved
rounds. Reported: the steady speed-up, the compile overhead in seconds, the break-even step count, and whether a
default retrain (`retrain_steps`) is long enough to repay it, plus the largest loss difference between the two
copies over the timed steps (compiled kernels round differently). The compile cost depends on inductor's on-disk
cache (/tmp/torchinductor_$USER): the first run on a machine measures a cold compile, a second run a warm one.

    python bench/compile_retrain.py [--threads 2] [--rounds 5] [--out bench/compile_retrain.json]
"""

from __future__ import annotations

import copy
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from precision_steps import build, run_bench, train_step  # noqa: E402

# (name, space, preset, input channels, size, batch, steps of a default retrain: epochs x batches per epoch)
CASES = [
    ("darts DARTS_V2 retrain on digits, 8x8, batch 64", "darts", "DARTS_V2", 1, 8, 64, 30 * 18),
    ("nb201 best_cifar10 retrain (C=16 N=5), 32x32, batch 64", "nb201", "best_cifar10", 3, 32, 64, None),
]


def measure(case: tuple, rounds: int, steps: int) -> dict:
    name, space_name, preset, channels, size, batch, retrain_steps = case
    model = build(space_name, preset, "retrain", channels, size).train()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(batch, channels, size, size, generator=g), torch.randint(0, 10, (batch,), generator=g)
    eager = copy.deepcopy(model)
    compiled_module = copy.deepcopy(model)
    compiled = torch.compile(compiled_module)
    opts = {"eager": torch.optim.SGD(eager.parameters(), lr=0.01, momentum=0.9),
            "compiled": torch.optim.SGD(compiled_module.parameters(), lr=0.01, momentum=0.9)}
    nets = {"eager": eager, "compiled": compiled}
    losses: dict[str, list[float]] = {"eager": [], "compiled": []}

    start = time.perf_counter()
    losses["eager"].append(train_step(eager, opts["eager"], x, y))
    first_eager = time.perf_counter() - start
    start = time.perf_counter()
    losses["compiled"].append(train_step(compiled, opts["compiled"], x, y))
    first_compiled = time.perf_counter() - start

    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    order = list(nets)
    for r in range(rounds):
        for v in (order if r % 2 == 0 else order[::-1]):
            start = time.perf_counter()
            for _ in range(steps):
                losses[v].append(train_step(nets[v], opts[v], x, y))
            times[v].append((time.perf_counter() - start) / steps)
    median = {v: statistics.median(t) for v, t in times.items()}
    overhead = first_compiled - first_eager
    saved = median["eager"] - median["compiled"]
    break_even = overhead / saved if saved > 0 else None
    return {
        "case": name, "batch": batch, "step_seconds": median, "step_seconds_all": times,
        "steady_speedup": median["eager"] / median["compiled"], "first_step_seconds": {"eager": first_eager,
                                                                                      "compiled": first_compiled},
        "compile_overhead_s": overhead, "break_even_steps": break_even, "default_retrain_steps": retrain_steps,
        "repaid_by_default_retrain": (break_even is not None and retrain_steps is not None
                                      and break_even < retrain_steps),
        "max_loss_difference": max(abs(a - b) for a, b in zip(losses["eager"], losses["compiled"], strict=True)),
    }


def describe(r: dict) -> str:
    even = "never" if r["break_even_steps"] is None else f"{r['break_even_steps']:.0f} steps"
    return (f"{r['case']}: eager {1000 * r['step_seconds']['eager']:.1f} ms/step, compiled "
            f"{1000 * r['step_seconds']['compiled']:.1f} ({r['steady_speedup']:.2f}x); compile overhead "
            f"{r['compile_overhead_s']:.1f} s, break-even {even}; max loss difference {r['max_loss_difference']:.2e}")


def main() -> None:
    run_bench(__doc__.splitlines()[0], measure, describe, rounds=5, steps=4, out=Path("bench/compile_retrain.json"),
              cases=CASES,
              benchmark="torch.compile (inductor) vs eager on nascli's retrain networks, float32, same process")


if __name__ == "__main__":
    main()
