"""SMASH's main network: runs any membank architecture with generated 1x1s and shared, sliced weights.

Every weight that the HyperNet does not generate is learned and shared by slicing, as in
SMASH: op j of block b, path p, conv q always slices the same tensor (out channels, in
channels / groups, and the centre k x k of a 7x7). BN is affine-free with batch statistics
only: running statistics shared across random architectures would mix (a fault of the
reference, which scored in eval mode), so every forward pass normalises with its own batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nascli.arch import Arch
from nascli.smash.encoding import Encoder
from nascli.spaces.base import DataShape
from nascli.spaces.membank import op_channels, path_shapes


def bn(x: torch.Tensor) -> torch.Tensor:
    return F.batch_norm(x, None, None, training=True)


def crop(w: torch.Tensor, k: int) -> torch.Tensor:
    s = (w.shape[-1] - k) // 2
    return w[..., s : s + k, s : s + k]


class SmashMainNet(nn.Module):
    def __init__(self, encoder: Encoder, shape: DataShape, channels: int):
        super().__init__()
        e = self.encoder = encoder
        self.channels = channels
        kmax = max(e.kernels)
        max_out = max(e.max_writes * e.max_bank_channels, e.max_width_units * e.unit)
        max_mid = e.max_width_units * e.unit
        self.stem = nn.Parameter(torch.empty(channels, shape.channels, 3, 3))
        self.project = nn.ParameterList()
        self.convs = nn.ParameterList()
        self.transitions = nn.ParameterList()
        for b in range(e.blocks):
            c_in = channels * 2 ** b
            self.project.append(nn.Parameter(torch.empty(e.max_bank_channels, c_in, 1, 1)))
            self.convs.append(nn.Parameter(torch.empty(e.max_ops, 2, 2, max_out, max_mid, kmax, kmax)))
            if b < e.blocks - 1:
                # Indexed by (bank, channel in bank), not by position in the concatenation, so an input
                # channel means the same thing whatever the bank widths of the sampled architecture.
                self.transitions.append(nn.Parameter(torch.empty(channels * 2 ** (b + 1), e.max_banks,
                                                                 e.max_bank_channels)))
        self.fc_weight = nn.Parameter(torch.empty(shape.num_classes, e.max_banks, e.max_bank_channels))
        self.fc_bias = nn.Parameter(torch.zeros(shape.num_classes))
        for p in (self.stem, *self.project, *self.transitions):
            nn.init.kaiming_normal_(p, nonlinearity="relu")
        nn.init.normal_(self.fc_weight, std=0.01)
        for p in self.convs:
            # He init for the widest fan-in a slice can have; narrower slices are renormalised by BN.
            nn.init.normal_(p, std=(2.0 / (max_mid * 9)) ** 0.5)

    def forward(self, x: torch.Tensor, arch: Arch, generated: list[list[torch.Tensor]]) -> torch.Tensor:
        x = bn(F.conv2d(x, self.stem, padding=1))
        blocks = arch.genotype["blocks"]
        for b, block in enumerate(blocks):
            bank = block["bank_channels"]
            first = F.conv2d(F.relu(bn(x)), self.project[b][:bank])
            banks = [first] + [torch.zeros_like(first) for _ in range(block["banks"] - 1)]
            for j, op in enumerate(block["ops"]):
                _, c_out = op_channels(block, op)
                h = F.conv2d(F.relu(bn(torch.cat([banks[r] for r in op["read"]], 1))), generated[b][j])
                out = 0
                for p, path in enumerate(op["paths"]):
                    y = h
                    for q, ((k, d, g), (i, o)) in enumerate(zip(path, path_shapes(op["width"], c_out, path),
                                                                strict=True)):
                        w = crop(self.convs[b][j, p, q, :o, : i // g], k)
                        y = F.conv2d(F.relu(bn(y)), w, padding=d * (k - 1) // 2, dilation=d, groups=g)
                    out = out + y
                for chunk, dst in zip(out.split(bank, 1), op["write"], strict=True):
                    banks[dst] = banks[dst] + chunk
            x = torch.cat(banks, 1)
            if b < len(blocks) - 1:
                w = self.transitions[b][:, : block["banks"], :bank].reshape(-1, x.shape[1], 1, 1)
                x = F.avg_pool2d(F.conv2d(F.relu(bn(x)), w), 2, ceil_mode=True)
        x = F.relu(bn(x)).mean((2, 3))
        block = blocks[-1]
        w = self.fc_weight[:, : block["banks"], : block["bank_channels"]].reshape(-1, x.shape[1])
        return F.linear(x, w, self.fc_bias)
