"""What every fused edge group shares: the straight-through (hard) forward over its own `run_op`."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn


class EdgeGroup(nn.Module, ABC):
    """Edges that read the same input, computed together. Subclasses define `run_op`."""

    @abstractmethod
    def run_op(self, x: torch.Tensor, edge: int, k: int, cache: dict | None = None) -> torch.Tensor | None:
        """Op k of `edge` on x (None for `none`); each space's group knows its ops."""

    def forward_hard(self, x: torch.Tensor, w: torch.Tensor) -> list[torch.Tensor | None]:
        """Run only each edge's chosen op (argmax of w), scaled by w at that op (straight-through)."""
        choice = w.argmax(dim=1).tolist()
        cache: dict[str, torch.Tensor] = {}  # work shared by edges (e.g. the pools of x)
        outs = []
        for edge, k in enumerate(choice):
            out = self.run_op(x, edge, k, cache)
            outs.append(None if out is None else w[edge, k] * out)
        return outs
