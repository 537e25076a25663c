"""SNAS's resource penalty: the expected cost of the sampled child under Z.

For each cell type, cost = mean over the cells of that type of sum_e sum_k Z[e,k] c[cell,e,k],
where c is the op's measured cost in the chosen form. Averaging over the cells of a type
replaces the reference's hard-coded 1/6 and 1/2 (8 cells); `reduce_ratio` weighs the reduce
cells as SNAS's `ratio` did.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from nascli.supernet.cost import METRICS, op_costs
from nascli.supernet.networks import Sample, Supernet

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


class ResourcePenalty:
    def __init__(self, net: Supernet, shape, cfg: PenaltyConfig):
        self.cfg = cfg
        if cfg.preset not in PRESETS:
            from nascli.errors import UserError

            raise UserError(f"unknown penalty preset '{cfg.preset}'; choose one of: {', '.join(PRESETS)}")
        self.weight = float(cfg.weight) if cfg.weight is not None else PRESETS[cfg.preset]
        raw = op_costs(net, shape)  # type -> cells x E x K x 3
        device = next(net.parameters()).device
        idx = [METRICS.index(m) for m in cfg.metrics]
        self.raw = {t: v.to(device) for t, v in raw.items()}
        self.unit = {t: self._transform(v[..., idx]).mean(0).to(device) for t, v in raw.items()}  # E x K
        self.params = {t: v[..., METRICS.index("params")].sum(0).to(device) for t, v in raw.items()}  # E x K
        self.type_weight = {t: (cfg.reduce_ratio if t == "reduce" else 1.0) for t in raw}

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

    def loss(self, samples: dict[str, Sample], alphas: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.cfg.estimator == "expected":
            weights = {t: torch.softmax(a, -1) for t, a in alphas.items()}
        else:
            weights = {t: s.weights for t, s in samples.items()}
        return self.weight * self.expected(weights)

    @torch.no_grad()
    def expected_params(self, alphas: dict[str, torch.Tensor]) -> float:
        """Expected searchable parameters of a child drawn from softmax(alpha), all cells."""
        return float(sum((torch.softmax(a, -1) * self.params[t]).sum() for t, a in alphas.items()))
