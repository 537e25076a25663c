"""How much each proxy's ranking moves with the init seed and the data batch; what jacob_cov is sensitive to.

Two implementations of a proxy can only agree as well as the proxy agrees with itself under the choices
they may make differently: the init seed, which training images form the batch, BN mode, precision.
For uniformly sampled NB201 cells (C=16, N=5, CIFAR-10 JPEG when ../shared is present), each proxy is
computed at a baseline (seed 0, a seeded class-mixed draw of 64 training images), with another init (seed 1), and
with another batch (a second, disjoint draw of 64); jacob_cov also with eval-mode BN (NASWOT v1's reference code), with numpy's
general eigen-solver and no clamping (the zero-cost reference's `eval_score`), and with the whole network
in float64. Reported: Spearman rho of each variant's ranking with the baseline's.

    python bench/proxy_stability.py --out bench/proxy_stability.json [--cells 60]
    python bench/proxy_stability.py --proxies meco,zico,az_expressivity,az_progressivity,az_trainability \
        --out bench/proxy_stability_later.json

AZ-NAS's terms read noise drawn from the seed, not the batch: for them "another batch" changes nothing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nascli import (
    atomic,  # noqa: E402
    precision,  # noqa: E402
)
from nascli.device import resolve  # noqa: E402
from nascli.proxies import PROXIES, load_proxies  # noqa: E402
from nascli.proxies.scoring import ScoringSetup, score_chunk  # noqa: E402
from nascli.proxies.zero_cost import JACOB_K  # noqa: E402
from nascli.train import drawn_batches  # noqa: E402
from proxies import nb201_bench  # noqa: E402

DEFAULT = "synflow,naswot,snip,grad_norm,jacob_cov"


def jacobian(model, x, train: bool, dtype=torch.float32):
    model = model.to(dtype).train(train)
    x = x.to(dtype).detach().requires_grad_(True)
    out = model(x)
    (jac,) = torch.autograd.grad(out.sum(), x)
    return jac.reshape(len(x), -1)


def jacob_torch(jac) -> float:
    corr = torch.nan_to_num(torch.corrcoef(jac.double()), nan=0.0)
    eig = torch.linalg.eigvalsh(corr).clamp_min(0.0)
    return float(-(torch.log(eig + JACOB_K) + 1.0 / (eig + JACOB_K)).sum())


def jacob_numpy_eig(jac) -> float:
    with np.errstate(all="ignore"):
        corr = np.corrcoef(jac.detach().float().numpy())
        v = np.linalg.eig(np.nan_to_num(corr))[0].real
        return float(-np.sum(np.log(v + JACOB_K) + 1.0 / (v + JACOB_K)))


def rho(a, b) -> float:
    return round(float(stats.spearmanr(a, b).statistic), 4)


def main() -> None:
    args, cfg, space, splits, archs, data_name = nb201_bench(__doc__.splitlines()[0], "bench/proxy_stability.json", 60,
                                                             DEFAULT)
    names = args.proxies.split(",")
    load_proxies()
    # Two disjoint seeded, class-mixed draws of 64 training images (the split is stored class-sorted: its first
    # 128 images would be one class, and "another batch" the same class again).
    runtime = resolve(cfg.device, precision.ZERO_COST, splits.shape, space.name)
    first, second = ([batch] for batch in drawn_batches(splits.train, splits, 64, 2, 0, runtime)[0])
    genotypes = [a.genotype for a in archs]

    def run(seed: int, batch) -> dict[str, list[float]]:
        # Every data proxy reads the same 64 images here (naswot too, whose paper batch is 128): the question is
        # how much a ranking moves with the seed or the batch, not what the paper's batch gives.
        sizes = {p: None if PROXIES[p].batch_size is None else 64 for p in names}
        setup = ScoringSetup("nb201", OmegaConf.to_container(cfg.space), "retrain", splits.shape, names,
                             sizes, {64: batch}, seed)
        rows = score_chunk(setup, genotypes)
        return {p: [r[p] for r in rows] for p in names}

    started = time.perf_counter()
    base, other_init, other_batch = run(0, first), run(1, first), run(0, second)
    variants = {"eval_mode_bn": [], "numpy_eig_no_clamp": [], "float64_network": []}
    for arch in archs if "jacob_cov" in names else []:
        torch.manual_seed(0)
        model = space.build(arch, splits.shape, cfg.space.retrain)
        xb = first[0][0]
        variants["eval_mode_bn"].append(jacob_torch(jacobian(model, xb, train=False)))
        jac = jacobian(model, xb, train=True)
        variants["numpy_eig_no_clamp"].append(jacob_numpy_eig(jac))
        variants["float64_network"].append(jacob_torch(jacobian(model, xb, train=True, dtype=torch.float64)))
    doc = {"what": __doc__.splitlines()[0], "data": data_name, "cells": len(archs), "network": "nb201 C=16 N=5",
           "spearman_vs_baseline": {p: {"other_init_seed": rho(base[p], other_init[p]),
                                        "other_batch": rho(base[p], other_batch[p])} for p in names},
           "seconds": round(time.perf_counter() - started, 1)}
    if "jacob_cov" in names:
        doc["jacob_cov_variants_spearman_vs_baseline"] = {k: rho(base["jacob_cov"], v) for k, v in variants.items()}
    print(doc)
    atomic.write_json(Path(args.out), doc)


if __name__ == "__main__":
    main()
