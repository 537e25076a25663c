"""SMASH's conditioning tensor: where each op of an architecture reads, writes and what it is.

The tensor has shape [channels, rows, columns], laid out like the 1x1 weights it conditions
(as in the reference): one row per `unit`-channel chunk of an op's input and one column per
`unit` of its bottleneck width, so the HyperNet's output at (row, column) becomes a
unit x unit block of that op's 1x1 conv. Op slot (b, j) owns rows from
(b * max_ops + j) * chunks; its input is its read banks concatenated, so chunk k comes from
read bank read[k // units_per_bank]. As in the reference the tensor is filled with -1; an
op's cells up to its width get +1 on the channel of the bank that row's chunk comes from, the
chunk's position inside that bank, the banks the op writes, its block, its width, and the
kernel sizes, dilations, groups and number of paths its convs use. Marking each row with its
own bank (not the op's whole read set) is what lets a convolutional HyperNet generate
bank-specific weights: a first layout with one row per op made the generated weights ignore
the conditioning altogether (cosine 1.000 between real and scrambled after 200 steps).
"""

from __future__ import annotations

import torch

from nascli.arch import Arch
from nascli.errors import UserError


class Encoder:
    def __init__(self, space_cfg):
        c = space_cfg
        self.unit, self.max_ops, self.blocks = int(c.unit), int(c.max_ops), int(c.blocks)
        self.max_banks, self.max_width_units = int(c.max_banks), int(c.max_width_units)
        self.kernels, self.dilations, self.groups = list(c.kernels), list(c.dilations), list(c.groups)
        self.max_bank_channels = int(c.max_bank_units) * self.unit
        self.max_in = int(c.max_reads) * self.max_bank_channels  # widest input a 1x1 conv can read
        self.max_reads, self.max_writes = int(c.max_reads), int(c.max_writes)
        self.chunks = self.max_in // self.unit  # input chunks (rows) per op slot
        offsets, start = {}, 0
        for name, size in (("read", self.max_banks), ("chunk", int(c.max_bank_units)),
                           ("write", self.max_banks), ("block", self.blocks),
                           ("width", self.max_width_units), ("kernel", len(self.kernels)),
                           ("dilation", len(self.dilations)), ("groups", len(self.groups)), ("paths", 2)):
            offsets[name] = start
            start += size
        self.offsets, self.channels = offsets, start
        self.rows, self.columns = self.blocks * self.max_ops * self.chunks, self.max_width_units

    def check(self, arch: Arch) -> None:
        """UserError unless the HyperNet and shared weights configured here can hold `arch`."""
        blocks = arch.genotype["blocks"]
        problems = []
        if len(blocks) != self.blocks:
            problems.append(f"{len(blocks)} blocks (configured: space.blocks={self.blocks})")
        for b, block in enumerate(blocks):
            if block["banks"] > self.max_banks or block["bank_channels"] > self.max_bank_channels \
                    or block["bank_channels"] % self.unit:
                problems.append(f"block {b} banks {block['banks']}x{block['bank_channels']}")
            if len(block["ops"]) > self.max_ops:
                problems.append(f"block {b} has {len(block['ops'])} ops > space.max_ops={self.max_ops}")
            for op in block["ops"]:
                convs = [conv for path in op["paths"] for conv in path]
                if op["width"] % self.unit or op["width"] > self.max_width_units * self.unit \
                        or len(op["read"]) > self.max_reads or len(op["write"]) > self.max_writes \
                        or any(k not in self.kernels or d not in self.dilations or g not in self.groups
                               for k, d, g in convs):
                    problems.append(f"block {b} op {op}")
        if problems:
            raise UserError(f"architecture {arch.arch_id} does not fit the SMASH network configured by space.*: "
                            f"{problems[0]}; sample it from the same space config")

    def first_row(self, block: int, op: int) -> int:
        return (block * self.max_ops + op) * self.chunks

    def scramble(self, conditioning: torch.Tensor, arch: Arch) -> torch.Tensor:
        """The rows (input chunks) and width columns permuted, seeded per architecture: the HyperNet then conditions
        on another wiring (SMASH's ablation)."""
        g = torch.Generator().manual_seed(int(arch.arch_id, 16) % 2**31)
        c = conditioning[:, torch.randperm(conditioning.shape[1], generator=g)]
        return c[:, :, torch.randperm(c.shape[2], generator=g)]

    def encode(self, arch: Arch) -> torch.Tensor:
        c = torch.full((self.channels, self.rows, self.columns), -1.0)
        o = self.offsets
        for b, block in enumerate(arch.genotype["blocks"]):
            per_bank = block["bank_channels"] // self.unit
            for j, op in enumerate(block["ops"]):
                cols = slice(0, op["width"] // self.unit)
                on = [o["write"] + w for w in op["write"]]
                on += [o["block"] + b, o["width"] + op["width"] // self.unit - 1, o["paths"] + len(op["paths"]) - 1]
                for path in op["paths"]:
                    for k, d, g in path:
                        on += [o["kernel"] + self.kernels.index(k), o["dilation"] + self.dilations.index(d),
                               o["groups"] + self.groups.index(g)]
                on = sorted(set(on))
                row = self.first_row(b, j)
                for bank in op["read"]:
                    for u in range(per_bank):
                        c[on + [o["read"] + bank, o["chunk"] + u], row, cols] = 1.0
                        row += 1
        return c
