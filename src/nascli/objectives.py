"""Ranking objectives that combine a score with a cost column (`nas rank objective=...`).

mnas is MnasNet's reward (Tan et al. 2019): ACC(m) x (LAT(m) / T)^w, with w = w_below when LAT <= T and w
above it. The paper's soft form uses w = w_below = -0.07 (a 2x slower model must be ~5% more accurate to
tie); its hard constraint is w_below = 0, w = -1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nascli.errors import UserError

OBJECTIVES = ("score", "mnas")


@dataclass(frozen=True)
class MnasObjective:
    target_ms: float
    w: float = -0.07
    w_below: float = -0.07

    def reward(self, score: float, latency_ms: float) -> float:
        """NaN where the reward is undefined (a non-positive or missing score or latency)."""
        if not (math.isfinite(score) and math.isfinite(latency_ms)) or score <= 0 or latency_ms <= 0:
            return math.nan
        exponent = self.w if latency_ms > self.target_ms else self.w_below
        return score * (latency_ms / self.target_ms) ** exponent


def objective_of(cfg) -> MnasObjective | None:
    """The `objective` node of a rank config: None for plain scores, else a checked MnasObjective."""
    name = str(cfg.name) if cfg is not None else "score"
    if name not in OBJECTIVES:
        raise UserError(f"objective={name} is not an objective; use one of: {', '.join(OBJECTIVES)}")
    if name == "score":
        return None
    target = cfg.get("target_ms")
    if target is None or not float(target) > 0:
        raise UserError("objective=mnas needs a positive latency target: add objective.target_ms=MS "
                        "(e.g. the latency of a reference model on this device)")
    w = float(cfg.get("w", -0.07))
    below = cfg.get("w_below")
    return MnasObjective(float(target), w, w if below is None else float(below))
