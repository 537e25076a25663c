"""SMASH's main network: runs any membank architecture with generated 1x1s and shared, sliced weights.

Every weight that the HyperNet does not generate is learned and shared by slicing, as in
SMASH: op j of block b, path p, conv q always slices the same tensor (out channels, in
channels / groups, and the centre k x k of a 7x7). BN is affine-free with batch statistics
only: running statistics shared across random architectures would mix (a fault of the
reference, which scored in eval mode), so every forward pass normalises with its own batch.
Every path conv filter is used at unit norm (`unit_filters`), so what an op adds into a bank
has the same scale whatever kernel, dilation, groups and width were sampled for it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nascli.arch import Arch
from nascli.spaces.base import DataShape
from nascli.spaces.cropped_conv import reaching_taps
from nascli.spaces.membank import op_channels, path_shapes
from nascli.strategies.smash.encoding import Encoder


def bn(x: torch.Tensor) -> torch.Tensor:
    return F.batch_norm(x, None, None, training=True)


def crop(w: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    sh, sw = (w.shape[-2] - kh) // 2, (w.shape[-1] - kw) // 2
    return w[..., sh : sh + kh, sw : sw + kw]


def unit_filters(w: torch.Tensor, taps: torch.Tensor | None = None) -> torch.Tensor:
    """`w` with each output filter divided by the norm of its `taps` (default: all of it).

    The reference's simple weight norm, per filter. A slice's fan-in ranges from 1 tap of 4 channels to
    49 taps of 16, so with raw slices an op's output (added unnormalised into the banks) was ~30x larger
    for a 7x7 than for a cut 1x1, and every sampled wiring put a different scale into the same bank. Unit
    filters over the taps that read the map give every op about unit-variance outputs on BN'd inputs.
    """
    taps = w if taps is None else taps
    return w / taps.flatten(1).norm(dim=1).clamp_min(1e-8).view(-1, 1, 1, 1)


def reach(k: int, d: int, size: int) -> int:
    """The part of a k x k kernel with dilation d that can touch a size-wide map.

    Taps farther than size - 1 from the centre only ever multiply zero padding, so cutting them
    gives the same output for less work: on digits' 4x4 and 2x2 blocks a 7x7 conv with dilation 3
    shrinks to 3x3 and 1x1. With 'same' padding the taps kept are a centred square.
    """
    first, last = reaching_taps(size, k, d, d * (k - 1) // 2)
    return last - first + 1


def reaching(w: torch.Tensor, k: int, d: int, size: tuple[int, int]) -> torch.Tensor:
    """The centre of `w` that a k x k kernel with dilation d can use on a `size` map (see `reach`)."""
    return crop(w, reach(k, d, size[0]), reach(k, d, size[1]))


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
            # One tensor per (op slot, path, conv): a slice's backward fills a zero gradient as large
            # as the tensor it was cut from, so one big tensor per block made that fill a tenth of a step.
            for _ in range(e.max_ops * 2 * 2):
                self.convs.append(nn.Parameter(torch.empty(max_out, max_mid, kmax, kmax)))
            if b < e.blocks - 1:
                # Indexed by (bank, channel in bank), not by position in the concatenation, so an input
                # channel means the same thing whatever the bank widths of the sampled architecture.
                self.transitions.append(nn.Parameter(torch.empty(channels * 2 ** (b + 1), e.max_banks,
                                                                 e.max_bank_channels)))
        self.fc_weight = nn.Parameter(torch.empty(shape.num_classes, e.max_banks, e.max_bank_channels))
        self.fc_bias = nn.Parameter(torch.zeros(shape.num_classes))
        for p in (self.stem, *self.project, *self.transitions):
            nn.init.kaiming_normal_(p, nonlinearity="relu")
        nn.init.uniform_(self.fc_weight, -0.125, 0.125)
        for p in self.convs:
            # He init for the widest fan-in a slice can have; narrower slices are renormalised by BN.
            nn.init.normal_(p, std=(2.0 / (max_mid * 9)) ** 0.5)

    def conv_slot(self, block: int, op: int, path: int, conv: int) -> torch.Tensor:
        return self.convs[((block * self.encoder.max_ops + op) * 2 + path) * 2 + conv]

    def path_weight(self, block: int, op: int, path: int, conv: int, kdg: tuple[int, int, int],
                    channels: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
        """The shared weight of one path conv: its slot sliced to (out, in / groups) channels, cut to the taps
        that can reach a `size` map, each filter at unit norm (bench/smash_step.py overrides this with plain
        weights)."""
        (k, d, g), (i, o) = kdg, channels
        return unit_filters(reaching(self.conv_slot(block, op, path, conv)[:o, : i // g], k, d, size))

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
                        w = self.path_weight(b, j, p, q, (k, d, g), (i, o), tuple(y.shape[-2:]))
                        kh, kw = w.shape[-2:]
                        y = F.conv2d(F.relu(bn(y)), w, padding=(d * (kh - 1) // 2, d * (kw - 1) // 2),
                                     dilation=d, groups=g)
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
