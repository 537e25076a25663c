"""SMASH's memory-bank space (Brock et al. 2018): blocks of memory banks that ops read and write.

A network is a stem, then blocks joined by transitions that halve the resolution. Inside a
block, the block input is projected into bank 0; each op, in order, reads a subset of banks
(concatenated), applies a 1x1 conv down to its `width`, then one or two parallel paths of one
or two convs (kernel, dilation, groups each), sums the paths and adds the result, split into
bank-sized chunks, into the banks it writes. The block output concatenates every bank.
ResNet (read i, write i), DenseNet (read all, write a new bank) and FractalNet-like wirings
are all special cases.

Genotype (channel counts are absolute, so an arch.json is self-contained):

    {"blocks": [{"banks": 4, "bank_channels": 8,
                 "ops": [{"read": [0], "write": [1], "width": 8,
                          "paths": [[[3, 1, 1]], [[5, 2, 2], [3, 1, 1]]]}]}]}

where each conv is [kernel, dilation, groups].
"""

from __future__ import annotations

import copy
import random
import re
from dataclasses import dataclass, field

import torch
from torch import nn

from nascli.arch import Arch
from nascli.errors import UserError
from nascli.spaces.base import DataShape, SearchSpace, expect, register_space


@dataclass
class MembankNetConfig:
    channels: int = 16  # stem output; the input of block b has channels * 2**b


@dataclass
class MembankSpaceConfig:
    name: str = "membank"
    blocks: int = 3
    unit: int = 4  # N: bank and bottleneck widths are multiples of it; groups divide it
    max_banks: int = 4
    max_bank_units: int = 4  # bank_channels = unit * U{1..max_bank_units}
    max_width_units: int = 4  # 1x1 bottleneck width = unit * {1..max_width_units}
    max_ops: int = 6  # ops per block at full budget
    max_reads: int = 3
    max_writes: int = 2
    kernels: list[int] = field(default_factory=lambda: [3, 5, 7])
    dilations: list[int] = field(default_factory=lambda: [1, 2, 3])
    groups: list[int] = field(default_factory=lambda: [1, 2, 4])
    search: MembankNetConfig = field(default_factory=MembankNetConfig)
    retrain: MembankNetConfig = field(default_factory=MembankNetConfig)


def op_channels(block: dict, op: dict) -> tuple[int, int]:
    """(channels the op reads, channels it writes)."""
    return len(op["read"]) * block["bank_channels"], len(op["write"]) * block["bank_channels"]


def path_shapes(width: int, out: int, path: list) -> list[tuple[int, int]]:
    """(in, out) channels of each conv of a path: width -> width ... -> out."""
    return [(width, out if i == len(path) - 1 else width) for i in range(len(path))]


def _preset(block) -> dict:
    return {"blocks": [block] * 3}


# The wirings SMASH's space contains as special cases (three identical blocks each).
MEMBANK_PRESETS = {
    # one bank, every op reads and adds back into it: residual blocks
    "resnet": _preset({"banks": 1, "bank_channels": 16, "ops": [
        {"read": [0], "write": [0], "width": 16, "paths": [[[3, 1, 1], [3, 1, 1]]]}] * 3}),
    # op j reads every bank written so far and writes a new one: dense connectivity
    "densenet": _preset({"banks": 4, "bank_channels": 8, "ops": [
        {"read": list(range(j + 1)), "write": [j + 1], "width": 16, "paths": [[[3, 1, 1]]]} for j in range(3)]}),
    # two paths of different depth joined by addition, repeated: a fractal-like expansion
    "fractal": _preset({"banks": 2, "bank_channels": 12, "ops": [
        {"read": [0], "write": [1], "width": 12, "paths": [[[3, 1, 1]], [[3, 1, 1], [3, 1, 1]]]},
        {"read": [1], "write": [0], "width": 12, "paths": [[[3, 1, 1]], [[3, 1, 1], [3, 1, 1]]]}]}),
}


@register_space("membank")
class MembankSpace(SearchSpace):
    name = "membank"
    Config = MembankSpaceConfig
    ops = ("conv",)
    presets = MEMBANK_PRESETS

    # -- genotypes ---------------------------------------------------------------------------
    def canonicalize(self, genotype) -> dict:
        expect(isinstance(genotype, dict) and isinstance(genotype.get("blocks"), list) and genotype["blocks"],
               'a membank genotype is {"blocks": [{"banks", "bank_channels", "ops": [...]}, ...]}')
        blocks = []
        for b, block in enumerate(genotype["blocks"]):
            where = f"membank block {b}"
            expect(isinstance(block, dict), f"{where} must be an object")
            banks, bank_ch = block.get("banks"), block.get("bank_channels")
            expect(isinstance(banks, int) and banks >= 1, f"{where}: 'banks' must be a positive integer")
            expect(isinstance(bank_ch, int) and bank_ch >= 1, f"{where}: 'bank_channels' must be a positive integer")
            ops = block.get("ops")
            expect(isinstance(ops, list) and ops, f"{where}: 'ops' must be a non-empty list")
            out_ops = []
            for i, op in enumerate(ops):
                w = f"{where} op {i}"
                expect(isinstance(op, dict), f"{w} must be an object")
                read, write = op.get("read"), op.get("write")
                for name, value in (("read", read), ("write", write)):
                    expect(isinstance(value, list) and value and all(isinstance(v, int) and 0 <= v < banks
                                                                     for v in value),
                           f"{w}: '{name}' must be a non-empty list of bank indices below {banks}")
                    expect(len(set(value)) == len(value), f"{w}: '{name}' repeats a bank")
                width = op.get("width")
                expect(isinstance(width, int) and width >= 1, f"{w}: 'width' must be a positive integer")
                paths = op.get("paths")
                expect(isinstance(paths, list) and 1 <= len(paths) <= 2, f"{w}: 'paths' must hold 1 or 2 paths")
                out = len(write) * bank_ch
                canon_paths = []
                for path in paths:
                    expect(isinstance(path, list) and 1 <= len(path) <= 2, f"{w}: a path holds 1 or 2 convs")
                    convs = []
                    for conv, (c_in, c_out) in zip(path, path_shapes(width, out, path), strict=True):
                        expect(isinstance(conv, list) and len(conv) == 3 and all(isinstance(v, int) for v in conv),
                               f"{w}: a conv is [kernel, dilation, groups], got {conv!r}")
                        k, d, g = conv
                        expect(k in (1, 3, 5, 7) and 1 <= d <= 3, f"{w}: kernel must be 1/3/5/7 and dilation 1-3")
                        expect(g >= 1 and c_in % g == 0 and c_out % g == 0,
                               f"{w}: groups={g} must divide the conv's {c_in} input and {c_out} output channels")
                        convs.append([k, d, g])
                    canon_paths.append(convs)
                out_ops.append({"read": sorted(read), "write": sorted(write), "width": width, "paths": canon_paths})
            blocks.append({"banks": banks, "bank_channels": bank_ch, "ops": out_ops})
        return {"blocks": blocks}

    def sample(self, rng: random.Random, max_budget: float = 1.0, max_kernel: int = 7) -> Arch:
        """SMASH's budget-driven sampler; training anneals `max_budget` and `max_kernel` upwards."""
        cfg = self.cfg
        blocks = []
        for _ in range(int(cfg.blocks)):
            banks = rng.randint(2, int(cfg.max_banks))
            bank_units = rng.randint(1, int(cfg.max_bank_units))
            budget = rng.uniform(min(0.3, max_budget), max_budget)
            n_ops = max(1, round(budget * int(cfg.max_ops)))
            written = {0}
            ops = []
            for _ in range(n_ops):
                read = rng.sample(range(banks), _fewer(rng, min(int(cfg.max_reads), banks)))
                if not written.intersection(read):
                    # An op that reads only empty banks computes nothing; read something already written.
                    read[0] = rng.choice(sorted(written))
                read = sorted(set(read))
                write = sorted(rng.sample(range(banks), _fewer(rng, min(int(cfg.max_writes), banks))))
                written.update(write)
                # SMASH's width prior: widths near the number of channels read are likelier.
                target = len(read) * bank_units
                units = list(range(1, int(cfg.max_width_units) + 1))
                width_units = rng.choices(units, weights=[1 / (0.01 + 10 * abs(u - target)) for u in units])[0]
                kernels = [k for k in cfg.kernels if k <= max_kernel] or [min(cfg.kernels)]
                paths = [[[rng.choice(kernels), rng.choice(list(cfg.dilations)), rng.choice(list(cfg.groups))]
                          for _ in range(rng.randint(1, 2))] for _ in range(rng.randint(1, 2))]
                ops.append({"read": read, "write": write, "width": width_units * int(cfg.unit), "paths": paths})
            blocks.append({"banks": banks, "bank_channels": bank_units * int(cfg.unit), "ops": ops})
        return self.make({"blocks": blocks})

    def perturb(self, arch: Arch, rng: random.Random, tries: int = 50) -> Arch:
        """One small change inside the sampler's limits (SMASH's perturbation of a top architecture): one
        conv's kernel, dilation or groups, an op's width, one bank more or less read or written, a path or a
        conv added or removed, or an op added or removed. Changes that break a rule (groups must divide the
        channels, an op must read a bank written before it) are redrawn."""
        cfg = self.cfg
        for _ in range(tries):
            genotype = copy.deepcopy(arch.genotype)
            block = rng.choice(genotype["blocks"])
            ops = block["ops"]
            op = rng.choice(ops)
            kind = rng.choice(("conv", "width", "read", "write", "path", "depth", "op"))
            if kind == "conv":
                path = rng.choice(op["paths"])
                path[rng.randrange(len(path))] = [rng.choice(list(cfg.kernels)), rng.choice(list(cfg.dilations)),
                                                  rng.choice(list(cfg.groups))]
            elif kind == "width":
                op["width"] = int(cfg.unit) * rng.randint(1, int(cfg.max_width_units))
            elif kind in ("read", "write"):
                most = int(cfg.max_reads if kind == "read" else cfg.max_writes)
                op[kind] = sorted(set(op[kind]) ^ {rng.randrange(block["banks"])})
                if not op[kind] or len(op[kind]) > most:
                    continue
            elif kind == "path":
                if len(op["paths"]) == 2:
                    op["paths"].pop(rng.randrange(2))
                else:
                    op["paths"].append([list(rng.choice(op["paths"][0]))])
            elif kind == "depth":
                path = rng.choice(op["paths"])
                if len(path) == 2:
                    path.pop(rng.randrange(2))
                else:
                    path.insert(rng.randrange(2), list(path[0]))
            elif len(ops) > 1 and (len(ops) == int(cfg.max_ops) or rng.random() < 0.5):
                ops.pop(rng.randrange(len(ops)))
            elif len(ops) < int(cfg.max_ops):
                ops.insert(rng.randrange(len(ops) + 1), copy.deepcopy(op))
            if genotype == arch.genotype or not _reads_written_banks(genotype):
                continue
            try:
                return self.make(genotype)
            except UserError:
                continue  # e.g. groups no longer divide the new width
        return arch

    def describe(self, arch: Arch) -> str:
        return " | ".join(f"{b['banks']}x{b['bank_channels']}:{len(b['ops'])}op" for b in arch.genotype["blocks"])

    # -- networks ----------------------------------------------------------------------------
    def build(self, arch: Arch, shape: DataShape, net, auxiliary: bool = False) -> nn.Module:
        expect(not auxiliary, "the membank network has no auxiliary head; set train.auxiliary_weight=0")
        return MembankNetwork(arch.genotype, shape, int(net.channels))

    # The latency table's ops here are the conv units (BN-ReLU-conv), one entry per kernel, dilation, groups,
    # output and input channels and input size; what joins them (bank zeros, concatenations, additions, pooling,
    # stem, head) is the network's fixed part.
    slot_ops = ()  # no finite op list: a table covers the units its networks use, no more

    def op_module(self, name: str, c: int, stride: int) -> nn.Module:
        match = _UNIT.fullmatch(name)
        expect(match is not None and stride == 1, f"'{name}' is not a membank conv unit (convKxK_dD_gG_oC)")
        k, d, g, c_out = (int(v) for v in match.groups())
        return bn_relu_conv(c, c_out, k, d, g)


def _reads_written_banks(genotype: dict) -> bool:
    """Every op reads at least one bank that the block's projection or an earlier op wrote."""
    for block in genotype["blocks"]:
        written = {0}
        for op in block["ops"]:
            if not written.intersection(op["read"]):
                return False
            written.update(op["write"])
    return True


def _fewer(rng: random.Random, most: int) -> int:
    """1..most, each one half as likely as the previous (SMASH biases ops towards few banks)."""
    return rng.choices(range(1, most + 1), weights=[2.0 ** -i for i in range(most)])[0]


def bn_relu_conv(c_in: int, c_out: int, k: int = 1, d: int = 1, g: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU(),
                         nn.Conv2d(c_in, c_out, k, padding=d * (k - 1) // 2, dilation=d, groups=g, bias=False))


_UNIT = re.compile(r"conv(\d+)x\1_d(\d+)_g(\d+)_o(\d+)")


def unit_name(unit: nn.Sequential) -> str:
    conv = unit[2]
    return f"conv{conv.kernel_size[0]}x{conv.kernel_size[0]}_d{conv.dilation[0]}_g{conv.groups}_o{conv.out_channels}"


class UnitSlots:
    """Conv units held by a module, as the indexable `edges` list that latency tables read and replace
    (a plain object, not a module: the network's parameters and state_dict keys stay as they are)."""

    def __init__(self, places: list[tuple[nn.Module, str]]):
        self.places = places

    def __getitem__(self, k: int) -> nn.Module:
        parent, name = self.places[k]
        return getattr(parent, name)

    def __setitem__(self, k: int, module: nn.Module) -> None:
        parent, name = self.places[k]
        setattr(parent, name, module)


def expose_units(owner: nn.Module, places: list[tuple[nn.Module, str]]) -> None:
    owner.edges = UnitSlots(places)
    owner.op_names = [unit_name(getattr(parent, name)) for parent, name in places]


class MembankOp(nn.Module):
    def __init__(self, block: dict, op: dict):
        super().__init__()
        c_in, c_out = op_channels(block, op)
        self.read, self.write, self.bank = op["read"], op["write"], block["bank_channels"]
        self.bottleneck = bn_relu_conv(c_in, op["width"])
        self.paths = nn.ModuleList(
            nn.Sequential(*[bn_relu_conv(i, o, *conv) for conv, (i, o) in
                            zip(path, path_shapes(op["width"], c_out, path), strict=True)])
            for path in op["paths"])
        expose_units(self, [(self, "bottleneck"), *((path, str(i)) for path in self.paths for i in range(len(path)))])

    def forward(self, banks: list[torch.Tensor]) -> None:
        h = self.bottleneck(torch.cat([banks[r] for r in self.read], 1))
        out = sum(p(h) for p in self.paths)
        for chunk, w in zip(out.split(self.bank, 1), self.write, strict=True):
            banks[w] = banks[w] + chunk


class MembankBlock(nn.Module):
    def __init__(self, block: dict, c_in: int):
        super().__init__()
        self.n_banks, self.bank = block["banks"], block["bank_channels"]
        self.project = bn_relu_conv(c_in, self.bank)
        self.ops = nn.ModuleList(MembankOp(block, op) for op in block["ops"])
        self.out_channels = self.n_banks * self.bank
        expose_units(self, [(self, "project")])

    def forward(self, x):
        first = self.project(x)
        banks = [first] + [first.new_zeros(first.shape) for _ in range(self.n_banks - 1)]
        for op in self.ops:
            op(banks)
        return torch.cat(banks, 1)


class MembankNetwork(nn.Module):
    """The architecture with every weight freely learned (what `nas retrain` trains)."""

    def __init__(self, genotype: dict, shape: DataShape, channels: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(shape.channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))
        blocks, transitions = [], []
        c = channels
        for b, block in enumerate(genotype["blocks"]):
            blocks.append(MembankBlock(block, c))
            if b < len(genotype["blocks"]) - 1:
                transitions.append(nn.Sequential(bn_relu_conv(blocks[-1].out_channels, channels * 2 ** (b + 1)),
                                                 nn.AvgPool2d(2, ceil_mode=True)))
                c = channels * 2 ** (b + 1)
        self.blocks, self.transitions = nn.ModuleList(blocks), nn.ModuleList(transitions)
        expose_units(self, [(t, "0") for t in self.transitions])
        last = blocks[-1].out_channels
        self.head = nn.Sequential(nn.BatchNorm2d(last), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(last, shape.num_classes))

    def forward(self, x):
        x = self.stem(x)
        for b, block in enumerate(self.blocks):
            x = block(x)
            if b < len(self.transitions):
                x = self.transitions[b](x)
        return self.head(x)
