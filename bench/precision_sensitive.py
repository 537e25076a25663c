"""Which parts stay float32 under bf16 autocast, by measurement: the error bf16 would add to each.

Issue 31 asks that numerically sensitive parts stay float32, decided by measurement. Each part is computed on the
same inputs in float32 and in bf16 (as autocast would give it) and the difference reported:

- the HyperNet output's normalisation (SMASH divides every generated weight by the norm of its op's weights);
- BN statistics under CPU autocast (a conv's bf16 output feeding BatchNorm2d: running statistics' dtype, and their
  difference from float32 statistics of the same input);
- the loss (cross-entropy of bf16 logits computed in bf16, against float32);
- SNAS's α and Gumbel-softmax sample (α is initialised at 1e-3 scale; a bf16 copy rounds it).

    python bench/precision_sensitive.py [--out bench/precision_sensitive.json]
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from nascli import atomic


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).abs() / b.float().abs().clamp_min(1e-30)).max().item()


def hypernet_norm(g: torch.Generator) -> dict:
    errors = {}
    for n in (64, 256, 1024):  # entries of one op's generated weights: unit^2 x chunks x width units
        worst = mean = 0.0
        for _ in range(200):
            w = torch.randn(n, generator=g).bfloat16()  # the HyperNet's output under autocast
            e = relative(w.norm(), w.float().norm())
            worst, mean = max(worst, e), mean + e / 200
        errors[n] = {"max_relative_error": worst, "mean_relative_error": mean}
    return errors


def bn_statistics(g: torch.Generator) -> dict:
    conv, bn = nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)
    x = torch.randn(32, 3, 16, 16, generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = bn(conv(x)), conv(x)
    out, pre = h
    expected = 0.1 * pre.float().mean((0, 2, 3))  # one momentum-0.1 update from zero, in float32
    return {"bn_output_dtype": str(out.dtype), "running_mean_dtype": str(bn.running_mean.dtype),
            "running_mean_abs_difference": (bn.running_mean - expected).abs().max().item()}


def loss(g: torch.Generator) -> dict:
    logits = (torch.randn(64, 10, generator=g) * 3).bfloat16()
    y = torch.randint(0, 10, (64,), generator=g)
    in_bf16, in_fp32 = F.cross_entropy(logits, y), F.cross_entropy(logits.float(), y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast_dtype = F.cross_entropy(logits, y).dtype
    return {"relative_error_bf16": relative(in_bf16, in_fp32), "autocast_computes_it_in": str(autocast_dtype)}


def snas_alpha(g: torch.Generator) -> dict:
    alpha = torch.randn(14, 8, generator=g) * 1e-3
    gumbel = -torch.log(-torch.log(torch.rand(14, 8, generator=g)))
    sample32 = torch.softmax(alpha + gumbel, -1)
    sample16 = torch.softmax((alpha.bfloat16() + gumbel.bfloat16()).float(), -1)
    return {"alpha_relative_rounding": relative(alpha.bfloat16(), alpha),
            "sample_abs_difference": (sample32 - sample16).abs().max().item()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/precision_sensitive.json"))
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    results = {"hypernet_norm": hypernet_norm(g), "bn_statistics": bn_statistics(g), "loss": loss(g),
               "snas_alpha": snas_alpha(g)}
    for name, value in results.items():
        print(name, value)
    atomic.write_json(args.out, {"benchmark": "error bf16 would add to the parts kept in float32",
                                 "torch": torch.__version__, "python": platform.python_version(), **results})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
