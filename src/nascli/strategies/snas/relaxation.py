"""The Gumbel-softmax relaxation of SNAS and its temperature schedule."""

from __future__ import annotations

import math

import torch

from nascli.supernet.networks import Sample


def temperature(progress: float, initial: float, final: float, schedule: str) -> float:
    """Temperature after `progress` (0..1) of the search; ends exactly at `final`.

    SNAS anneals linearly from 1 to 0.03 over 150 epochs, with 150 hard-coded; here the
    schedule runs over the real number of training steps, whatever the epoch count.
    """
    p = min(max(progress, 0.0), 1.0)
    if schedule == "linear":
        return initial + (final - initial) * p
    if schedule == "exponential":
        return initial * math.exp(p * math.log(final / initial))
    if schedule == "constant":
        return initial
    raise ValueError(f"unknown temperature schedule {schedule!r}")


def gumbel_like(logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
    exponential = (-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20)  # -log U ~ Exp(1), kept off 0
    return -torch.log(exponential)


def sample(logits: torch.Tensor, tau: float, hard: bool, generator: torch.Generator | None = None) -> Sample:
    """One relaxed one-hot per edge: Z = softmax((alpha + G) / tau).

    Soft (SNAS): every op runs, weighted by Z. Hard (straight-through): the forward uses
    the one-hot of argmax Z so only that op runs; the gradient flows through Z.
    """
    z = torch.softmax((logits + gumbel_like(logits, generator)) / tau, dim=-1)
    if not hard:
        return Sample(z, hard=False)
    one_hot = torch.zeros_like(z).scatter_(-1, z.argmax(-1, keepdim=True), 1.0)
    return Sample(one_hot - z.detach() + z, hard=True)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Per-edge entropy (nats) of softmax(alpha)."""
    logp = torch.log_softmax(logits.detach().float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)
