"""SNAS's resource penalty: the expected cost of the sampled child under Z.

For each cell type, cost = mean over the cells of that type of sum_e sum_k Z[e,k] c[cell,e,k],
where c is the op's measured cost in the chosen form. Averaging over the cells of a type
replaces the reference's hard-coded 1/6 and 1/2 (8 cells); `reduce_ratio` weighs the reduce
cells as SNAS's `ratio` did.

cost=latency takes c from a per-op latency table timed on this device (latency_table.py), in
microseconds, at the supernet's own cells. With `target_ms` the penalty is MnasNet's instead
(Tan et al. 2019): the child's expected latency at the retrain size, L = fixed part + sum over the
retrain network's cells of sum_e sum_k Z[e,k] t[cell,e,k], enters as -w log(L / target), with
w = 0 below the target and -1 above it (hard: only a child slower than the target pays) or
w = -0.07 everywhere (soft), scaled by `weight` (1 when unset).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch

from nascli.supernet.cost import METRICS, op_costs, op_latencies
from nascli.supernet.networks import Sample, Supernet, build_supernet

COSTS = ("size", "latency")
TARGET_FORMS = {"hard": (0.0, -1.0), "soft": (-0.07, -0.07)}  # MnasNet's (w below, w above) the target

# lambda for the log-form cost (a conv op on a small map costs ~8 units, a pool ~2.5, skip 0).
# Spaced x10 apart; measured on digits (README): the child's parameters fall with each step.
PRESETS = {"none": 0.0, "mild": 2e-4, "moderate": 2e-3, "aggressive": 2e-2}


@dataclass
class PenaltyConfig:
    preset: str = "mild"  # none | mild | moderate | aggressive
    weight: float | None = None  # explicit lambda; overrides the preset
    form: str = "log"  # log: mean of log(max(cost, 1)) over metrics; linear: mean of cost / edge max
    metrics: list[str] = field(default_factory=lambda: list(METRICS))
    reduce_ratio: float = 1.0
    estimator: str = "reparam"  # reparam: through the sampled Z (SNAS); expected: through softmax(alpha)
    cost: str = "size"  # size: `metrics` (params/flops/mac) | latency: a per-op latency table of this device
    target_ms: float | None = None  # cost=latency: MnasNet's target latency of the retrain-size child
    target_form: str = "hard"  # hard: only above the target | soft: w=-0.07 on both sides


def check_penalty(cfg: PenaltyConfig) -> None:
    from nascli.errors import UserError

    if cfg.preset not in PRESETS:
        raise UserError(f"unknown penalty preset '{cfg.preset}'; choose one of: {', '.join(PRESETS)}")
    if cfg.cost not in COSTS:
        raise UserError(f"strategy.penalty.cost={cfg.cost} is not a cost; use one of: {', '.join(COSTS)}")
    if cfg.target_form not in TARGET_FORMS:
        raise UserError(f"strategy.penalty.target_form={cfg.target_form}; use one of: {', '.join(TARGET_FORMS)}")
    if cfg.target_ms is not None and (cfg.cost != "latency" or not float(cfg.target_ms) > 0):
        raise UserError("strategy.penalty.target_ms needs strategy.penalty.cost=latency and a positive value")
    unknown = [m for m in cfg.metrics if m not in METRICS]
    if cfg.cost == "size" and unknown:
        raise UserError(f"strategy.penalty.metrics: unknown {unknown}; use some of: {', '.join(METRICS)}")


class ResourcePenalty:
    def __init__(self, net: Supernet, shape, cfg: PenaltyConfig, latency_table=None, space=None):
        """`latency_table` (a LatencyTable of the space) and `space` are needed for cost=latency only."""
        check_penalty(cfg)
        self.cfg = cfg
        self.weight = float(cfg.weight) if cfg.weight is not None else PRESETS[cfg.preset]
        raw = op_costs(net, shape)  # type -> cells x E x K x 3
        device = next(net.parameters()).device
        self.raw = {t: v.to(device) for t, v in raw.items()}
        if cfg.cost == "latency":
            micros = {t: 1000.0 * v for t, v in op_latencies(net, shape, latency_table).items()}
            self.unit = {t: self._transform(v[..., None]).mean(0).to(device) for t, v in micros.items()}
        else:
            idx = [METRICS.index(m) for m in cfg.metrics]
            self.unit = {t: self._transform(v[..., idx]).mean(0).to(device) for t, v in raw.items()}  # E x K
        self.params = {t: v[..., METRICS.index("params")].sum(0).to(device) for t, v in raw.items()}  # E x K
        self.type_weight = {t: (cfg.reduce_ratio if t == "reduce" else 1.0) for t in raw}
        self.latency_ms = None  # type -> E x K: each op's latency summed over the retrain network's cells
        if cfg.cost == "latency":
            self.fixed_ms, self.latency_ms = retrain_latency(space, shape, latency_table, device)
        if cfg.target_ms is not None:
            self.weight = float(cfg.weight) if cfg.weight is not None else 1.0

    def _transform(self, costs: torch.Tensor) -> torch.Tensor:
        if self.cfg.form == "log":
            return torch.log(costs.clamp_min(1.0)).mean(-1)
        if self.cfg.form == "linear":
            scale = costs.amax(dim=-2, keepdim=True).clamp_min(1.0)  # max over ops of each edge
            return (costs / scale).mean(-1)
        raise ValueError(f"unknown penalty form {self.cfg.form!r}")

    def expected(self, weights: dict[str, torch.Tensor]) -> torch.Tensor:
        """sum over cell types of type_weight * sum_{e,k} w[e,k] * unit cost[e,k]."""
        total = 0.0
        for t, w in weights.items():
            total = total + self.type_weight[t] * (w * self.unit[t]).sum()
        return total

    def expected_latency_ms(self, weights: dict[str, torch.Tensor]) -> torch.Tensor:
        """The retrain-size child's latency under op weights w: fixed part + sum of w-weighted op latencies."""
        return self.fixed_ms + sum((w * self.latency_ms[t]).sum() for t, w in weights.items())

    def loss(self, samples: dict[str, Sample], alphas: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.cfg.estimator == "expected":
            weights = {t: torch.softmax(a, -1) for t, a in alphas.items()}
        else:
            weights = {t: s.weights for t, s in samples.items()}
        if self.cfg.target_ms is None:
            return self.weight * self.expected(weights)
        below, above = TARGET_FORMS[self.cfg.target_form]
        ratio = torch.log(self.expected_latency_ms(weights) / float(self.cfg.target_ms))
        return self.weight * -torch.where(ratio > 0, above * ratio, below * ratio)

    @torch.no_grad()
    def expected_params(self, alphas: dict[str, torch.Tensor]) -> float:
        """Expected searchable parameters of a child drawn from softmax(alpha), all cells."""
        return float(sum((torch.softmax(a, -1) * self.params[t]).sum() for t, a in alphas.items()))


def retrain_latency(space, shape, table, device) -> tuple[float, dict[str, torch.Tensor]]:
    """(fixed part in ms, type -> E x K: op latency summed over the cells of that type) of the space's network at
    its retrain size, from the latency table: the expected latency of a child as `nas retrain` will build it."""
    retrain_net = build_supernet(space, shape, size=space.cfg.retrain)
    per_cell = op_latencies(retrain_net, shape, table)
    arch = space.sample(random.Random(0))  # every architecture of a cell space shares the fixed part's shape
    fixed = table.fixed_ms(shape, space.cfg.retrain, arch)
    return fixed, {t: v.sum(0).to(device) for t, v in per_cell.items()}
