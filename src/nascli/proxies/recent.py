"""The recent proxies: ZiCo (Li et al. 2023), MeCo (Jiang et al. 2023), SWAP (Peng et al. 2024) and AZ-NAS's
terms (Lee and Ham 2024). Each follows its authors' code where code and text differ; the docstrings say where.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from nascli.proxies.base import LOWEST, register_proxy
from nascli.proxies.probe import Probe, mean_over_passes


@register_proxy("zico", uses=("half_batch_grads",),
                about="sum over conv/linear layers of log sum_theta mean|g|/std(g), g the weight's gradients "
                      "from the two halves of a batch of 64 (ZiCo's code: split_data=2)",
                degenerate="0 (no gradient varies), the least possible")
def zico(probe: Probe, batch_size: int) -> float:
    values = []
    for first, second in probe.half_passes(batch_size):
        if first.constant_output or second.constant_output:
            values.append(0.0)
            continue
        values.append(zico_score([first.weight_grads, second.weight_grads]))
    return float(np.mean(values))


def zico_score(grads_per_half: list[list[torch.Tensor | None]]) -> float:
    """Layers whose gradient is None in every half are skipped; a weight whose gradient does not vary over the
    halves (std 0) is left out of its layer's sum, and a layer whose sum is 0 adds nothing (the code's rules)."""
    total = 0.0
    for layer in zip(*grads_per_half, strict=True):
        if all(g is None for g in layer):
            continue
        ref = next(g for g in layer if g is not None)
        g = torch.stack([(torch.zeros_like(ref) if t is None else t).reshape(-1).double() for t in layer])
        std = g.std(dim=0, unbiased=False)
        keep = std != 0
        ratio_sum = float((g.abs().mean(dim=0)[keep] / std[keep]).sum())
        if ratio_sum != 0.0:
            total += math.log(ratio_sum)
    return total


@register_proxy("meco", uses=("feature_corr",),
                about="sum over module outputs of the least eigenvalue of the first image's channel-by-channel "
                      "Pearson correlation over positions (MeCo's code hooks every module)",
                degenerate="0 (a correlation matrix's least eigenvalue is >= 0), the least possible")
def meco(probe: Probe, batch_size: int) -> float:
    return mean_over_passes(probe.passes(batch_size), lambda p: p.meco, 0.0)


@register_proxy("swap", uses=("relu_patterns",),
                about="how many distinct on/off patterns over the batch's images the units of all ReLUs show "
                      "(sample-wise activation patterns)",
                degenerate="0, the least possible")
def swap(probe: Probe, batch_size: int) -> float:
    return mean_over_passes(probe.passes(batch_size), lambda p: p.patterns, 0.0)


def _az(probe: Probe, batch_size: int, term: str, worst: float) -> float:
    values = []
    for p in probe.block_passes(batch_size):
        value = getattr(p, term)
        values.append(worst if p.constant_output or not math.isfinite(value) else value)
    return float(np.mean(values))


@register_proxy("az_expressivity", uses=("block_features",),
                about="AZ-NAS: sum over the stem and cells of the entropy of the block output's normalised "
                      "channel-covariance eigenvalues, on standard normal input (its code's NB201 input)",
                degenerate="0 (no feature varies), the least possible")
def az_expressivity(probe: Probe, batch_size: int) -> float:
    return _az(probe, batch_size, "expressivity", 0.0)


@register_proxy("az_progressivity", uses=("block_features",),
                about="AZ-NAS: the least increase of that entropy from one block to the next",
                degenerate="the lowest finite float (no least value)")
def az_progressivity(probe: Probe, batch_size: int) -> float:
    return _az(probe, batch_size, "progressivity", LOWEST)


@register_proxy("az_trainability", uses=("block_features",),
                about="AZ-NAS: mean over consecutive blocks of (2 - s - 1/s), s the spectral norm of the "
                      "block's Jacobian estimated with random-sign gradients",
                degenerate="the lowest finite float (as the code's -inf for an identity block)")
def az_trainability(probe: Probe, batch_size: int) -> float:
    return _az(probe, batch_size, "trainability", LOWEST)
