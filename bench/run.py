"""Supernet training-step benchmarks, as ratios against a plain MixedOp reference run in the same process.

Timings on a shared machine drift, so each case interleaves reference and candidate
repeats and reports the ratio of medians; absolute img/s are kept for context only.
Peak memory is the bytes autograd saves for backward during one step (the activation
memory the step needs, deterministic on the CPU); on CUDA the allocator's peak is added.

    python bench/run.py --out bench/results.json [--quick]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nascli import atomic  # noqa: E402
from nascli.config import compose  # noqa: E402
from nascli.spaces import DataShape, get_space  # noqa: E402
from nascli.strategies.snas.relaxation import sample  # noqa: E402
from nascli.supernet import build_supernet  # noqa: E402
from reference_mixedop import ReferenceSupernet  # noqa: E402

# The yardstick: a 5-cell, 8-channel darts supernet on digits-sized inputs at batch 128.
CASES = [
    {"name": "darts_c8_l5_8x8_b128", "channels": 8, "layers": 5, "size": 8, "batch": 128},
    {"name": "darts_c8_l5_16x16_b32", "channels": 8, "layers": 5, "size": 16, "batch": 32},
]


class StepRunner:
    """One SNAS training step (θ and α from the same batch) for either network."""

    def __init__(self, net, alphas: dict[str, torch.Tensor], forward, x, y, hard: bool):
        self.net, self.alphas, self.forward, self.x, self.y, self.hard = net, alphas, forward, x, y, hard
        self.w_opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9)
        self.a_opt = torch.optim.Adam(alphas.values(), lr=3e-4, betas=(0.5, 0.999))

    def __call__(self):
        samples = {t: sample(a, 1.0, self.hard) for t, a in self.alphas.items()}
        loss = F.cross_entropy(self.forward(self.x, samples), self.y)
        self.w_opt.zero_grad(set_to_none=True)
        self.a_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.w_opt.step()
        self.a_opt.step()


def saved_bytes(step) -> int:
    """Bytes of tensors autograd keeps for backward in one step (distinct storages)."""
    seen: dict[int, int] = {}

    def pack(t):
        if t.device.type != "meta":
            storage = t.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return sum(seen.values())


def images_per_second(step, batch: int, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def build_runners(case: dict, device: torch.device) -> dict[str, StepRunner]:
    torch.manual_seed(0)
    shape = DataShape(1, case["size"], case["size"], 10)
    x = torch.randn(case["batch"], 1, case["size"], case["size"], device=device)
    y = torch.randint(0, 10, (case["batch"],), device=device)
    edges = sum(2 + i for i in range(4))

    ref = ReferenceSupernet(1, 10, c=case["channels"], layers=case["layers"]).to(device)
    ref_alphas = {t: torch.full((edges, 8), 1.0, device=device).add_(0.01 * torch.randn(edges, 8, device=device))
                  .requires_grad_() for t in ("normal", "reduce")}
    ref_forward = lambda x, s: ref(x, s["normal"].weights, s["reduce"].weights)  # noqa: E731

    cfg = compose("search", ["space=darts", f"space.search.channels={case['channels']}",
                             f"space.search.layers={case['layers']}"])
    runners = {"reference": StepRunner(ref, ref_alphas, ref_forward, x, y, hard=False)}
    for hard in (False, True):
        net = build_supernet(get_space("darts", cfg.space), shape).to(device)
        alphas = {t: a.detach().clone().requires_grad_() for t, a in ref_alphas.items()}
        runners["hard" if hard else "soft"] = StepRunner(net, alphas, net, x, y, hard=hard)
    return runners


def run_case(case: dict, device: torch.device, repeats: int, steps: int) -> dict:
    runners = build_runners(case, device)
    memory = {name: saved_bytes(r) for name, r in runners.items()}
    cuda_peak = {}
    speeds: dict[str, list[float]] = {name: [] for name in runners}
    for name, runner in runners.items():  # warm-up: allocator, oneDNN primitive caches
        runner()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
            runner()
            cuda_peak[name] = torch.cuda.max_memory_allocated()
    for _ in range(repeats):  # interleaved so machine noise hits every variant alike
        for name, runner in runners.items():
            speeds[name].append(images_per_second(runner, case["batch"], steps))
    median = {name: statistics.median(v) for name, v in speeds.items()}
    out = {"case": case, "img_per_s": median, "img_per_s_all": speeds, "saved_for_backward_bytes": memory}
    for name in ("soft", "hard"):
        out[f"{name}_speedup"] = median[name] / median["reference"]
        out[f"{name}_memory_ratio"] = memory[name] / memory["reference"]
    if cuda_peak:
        out["cuda_peak_bytes"] = cuda_peak
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results.json"))
    parser.add_argument("--quick", action="store_true", help="one case, fewer repeats (a smoke check)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (the project's reference machine: 2)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cases = CASES[:1] if args.quick else CASES
    repeats, steps = (1, 1) if args.quick else (5, 3)
    results = []
    for case in cases:
        r = run_case(case, device, repeats, steps)
        results.append(r)
        ips = r["img_per_s"]
        print(f"{case['name']}: reference {ips['reference']:.1f} img/s | soft {ips['soft']:.1f} "
              f"({r['soft_speedup']:.2f}x, memory {r['soft_memory_ratio']:.2f}x) | hard {ips['hard']:.1f} "
              f"({r['hard_speedup']:.2f}x, memory {r['hard_memory_ratio']:.2f}x)")
    atomic.write_json(args.out, {
        "benchmark": "snas supernet training step vs plain MixedOp reference",
        "device": str(device), "threads": args.threads, "torch": torch.__version__,
        "python": platform.python_version(), "machine": platform.machine(), "results": results,
    })
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
