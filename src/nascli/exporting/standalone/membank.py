"""model.py for SMASH's memory-bank space: the module tree of nascli's MembankNetwork with one genotype's blocks.
The space has no notation outside SMASH's own code, so its genotype is nascli's JSON alone."""

from __future__ import annotations

from nascli.arch import Arch
from nascli.exporting.standalone import (
    ModelSource,
    SpaceExporter,
    literal,
    module_header,
    register_space_exporter,
)

BODY = '''

def unit(c_in, c_out, kernel=1, dilation=1, groups=1):
    """BN, ReLU, conv (SMASH's pre-activation unit)."""
    return nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, c_out, kernel, padding=dilation * (kernel - 1) // 2,
                                                                  dilation=dilation, groups=groups, bias=False))


class Op(nn.Module):
    """Read banks (concatenated), a 1x1 bottleneck to `width`, one or two paths of [kernel, dilation, groups]
    convs summed, added in bank-sized chunks into the banks it writes."""

    def __init__(self, block, op):
        super().__init__()
        bank, width = block["bank_channels"], op["width"]
        c_out = len(op["write"]) * bank
        self.read, self.write, self.bank = op["read"], op["write"], bank
        self.bottleneck = unit(len(op["read"]) * bank, width)
        self.paths = nn.ModuleList(
            nn.Sequential(*[unit(width, c_out if i == len(path) - 1 else width, *conv) for i, conv in enumerate(path)])
            for path in op["paths"])

    def forward(self, banks):
        h = self.bottleneck(torch.cat([banks[r] for r in self.read], 1))
        out = sum(p(h) for p in self.paths)
        for chunk, w in zip(out.split(self.bank, 1), self.write):
            banks[w] = banks[w] + chunk


class Block(nn.Module):
    """The block input projected into bank 0, the other banks zero; the ops in order; all banks concatenated."""

    def __init__(self, block, c_in):
        super().__init__()
        self.n_banks = block["banks"]
        self.project = unit(c_in, block["bank_channels"])
        self.ops = nn.ModuleList(Op(block, op) for op in block["ops"])

    def forward(self, x):
        first = self.project(x)
        banks = [first] + [torch.zeros_like(first) for _ in range(self.n_banks - 1)]
        for op in self.ops:
            op(banks)
        return torch.cat(banks, 1)


class Network(nn.Module):
    """Stem, the blocks joined by transitions (unit to CHANNELS * 2**b, 2x2 avg pool), BN-ReLU-pool-linear head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(IN_CHANNELS, CHANNELS, 3, padding=1, bias=False), nn.BatchNorm2d(CHANNELS))
        blocks, transitions, c = [], [], CHANNELS
        for b, block in enumerate(BLOCKS):
            blocks.append(Block(block, c))
            if b < len(BLOCKS) - 1:
                c = CHANNELS * 2 ** (b + 1)
                transitions.append(nn.Sequential(unit(block["banks"] * block["bank_channels"], c),
                                                 nn.AvgPool2d(2, ceil_mode=True)))
        self.blocks, self.transitions = nn.ModuleList(blocks), nn.ModuleList(transitions)
        last = BLOCKS[-1]["banks"] * BLOCKS[-1]["bank_channels"]
        self.head = nn.Sequential(nn.BatchNorm2d(last), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(last, NUM_CLASSES))

    def forward(self, x):
        x = self.stem(x)
        for b, block in enumerate(self.blocks):
            x = block(x)
            if b < len(self.transitions):
                x = self.transitions[b](x)
        return self.head(x)


def build():
    return Network()
'''


def model_py(source: ModelSource) -> str:
    text = module_header(source, f"Architecture {source.arch.arch_id} (SMASH memory-bank network)")
    return text + (f"BLOCKS = {literal(source.arch.genotype['blocks'], 9)}\n"
                   f"CHANNELS = {int(source.net['channels'])}  # the stem's; block b reads CHANNELS * 2**b\n" + BODY)


def genotype_files(arch: Arch) -> dict[str, str]:
    return {}


register_space_exporter("membank")(SpaceExporter(model_py, genotype_files))
