"""BatchNorm (affine=False) statistics for many ops stored in one buffer.

Supernet search cells use BN without scale/shift (quark0/darts#10). Packing the running
statistics of every op of an edge group into one buffer lets the fused path normalise all
of them in one call, while the per-op path normalises a slice of the same buffers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PackedBN(nn.Module):
    def __init__(self, channels: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.momentum = momentum  # set per batch by Supernet.set_bn_momentum during recalibration
        self.eps = eps

    def forward(self, x: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Normalise channel dim 1 of x with statistics channels [start:stop]."""
        stop = self.running_mean.numel() if stop is None else stop
        return F.batch_norm(x, self.running_mean[start:stop], self.running_var[start:stop], None, None,
                            self.training, self.momentum, self.eps)

    def reset_running_stats(self) -> None:
        self.running_mean.zero_()
        self.running_var.fill_(1.0)
