"""SMASH's HyperNet: a small weight-normalised conv net from (noise, conditioning) to 1x1 filters.

No BN and no biases (the reference's choice; its LeakyReLU because plain ReLU hid NaNs). Its
output at (row, column) is a unit x unit block of an op's 1x1 weight: row = a `unit`-channel
chunk of the op's input, column = a `unit` of its bottleneck width (see encoding.py). Each
op's 1x1 weight is assembled from its blocks and normalised by its Frobenius norm, as the
reference's `wn2d`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from nascli.arch import Arch
from nascli.strategies.smash.encoding import Encoder


class HyperNet(nn.Module):
    def __init__(self, encoder: Encoder, z_channels: int, width: int, depth: int):
        super().__init__()
        self.encoder, self.z_channels = encoder, z_channels
        layers: list[nn.Module] = []
        c = z_channels + encoder.channels
        for _ in range(depth):
            conv = nn.Conv2d(c, width, 3, padding=1, bias=False)
            nn.init.orthogonal_(conv.weight)
            layers += [weight_norm(conv), nn.LeakyReLU(0.02)]
            c = width
        out = nn.Conv2d(c, encoder.unit * encoder.unit, 1, bias=False)
        nn.init.orthogonal_(out.weight)
        layers.append(weight_norm(out))
        self.net = nn.Sequential(*layers)

    def noise(self, generator: torch.Generator | None = None) -> torch.Tensor:
        e = self.encoder
        return torch.randn(self.z_channels, e.rows, e.columns, generator=generator)

    def forward(self, arch: Arch, conditioning: torch.Tensor, z: torch.Tensor) -> list[list[torch.Tensor]]:
        """Per block, per op: the generated 1x1 weight [width, channels read, 1, 1]."""
        device = next(self.parameters()).device
        out = self.net(torch.cat([z, conditioning]).unsqueeze(0).to(device))[0]  # [unit*unit, rows, cols]
        return assemble(self.encoder, arch, out)


def assemble(e: Encoder, arch: Arch, out: torch.Tensor) -> list[list[torch.Tensor]]:
    """Each op's 1x1 weight cut from a [unit*unit, rows, columns] table laid out like the conditioning."""
    u = e.unit
    weights = []
    for b, block in enumerate(arch.genotype["blocks"]):
        per_op = []
        for j, op in enumerate(block["ops"]):
            n_in = len(op["read"]) * block["bank_channels"] // u
            row = e.first_row(b, j)
            cells = out[:, row : row + n_in, : op["width"] // u]  # [u_out * u_in, chunks, width units]
            # -> [width units, u_out, chunks, u_in] = [width, channels read]
            # The normalisation runs in float32 even under bf16 autocast: a bf16 norm over a few hundred
            # entries is off by up to ~0.4%, and every generated weight of the step is scaled by it.
            w = cells.float().reshape(u, u, n_in, -1).permute(3, 0, 2, 1).reshape(op["width"], n_in * u)
            per_op.append((w / w.norm().clamp_min(1e-8)).unsqueeze(-1).unsqueeze(-1))
        weights.append(per_op)
    return weights


class FreeWeights(nn.Module):
    """conditioning=none: the HyperNet's output replaced by one freely learned table of the same layout, cut and
    normalised the same way. Every architecture then uses the same shared 1x1 weights for the same slot: plain
    single-path weight sharing (SPOS) on the same main network."""

    def __init__(self, encoder: Encoder):
        super().__init__()
        self.encoder, self.z_channels = encoder, 0
        self.table = nn.Parameter(torch.randn(encoder.unit * encoder.unit, encoder.rows, encoder.columns))

    def noise(self, generator: torch.Generator | None = None) -> torch.Tensor:
        del generator
        return torch.zeros(0)

    def forward(self, arch: Arch, conditioning: torch.Tensor, z: torch.Tensor) -> list[list[torch.Tensor]]:
        del conditioning, z
        return assemble(self.encoder, arch, self.table)
