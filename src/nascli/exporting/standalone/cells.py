"""model.py and DARTS's Genotype text for the cell spaces (darts, pnas): DARTS's NetworkCIFAR skeleton with the
cells of one genotype. The generated code builds the same module tree as nascli's CellNetwork, so nascli's
state dict loads into it unchanged; only the ops the genotype uses are written out."""

from __future__ import annotations

import json

from nascli.arch import Arch
from nascli.exporting.standalone import (
    ModelSource,
    SpaceExporter,
    literal,
    module_header,
    register_space_exporter,
)
from nascli.spaces.cell_network import reduction_layers

# Each op as one line of plain PyTorch (c channels, stride s): DARTS's definitions, as nascli builds them.
OP_SOURCE = {
    "avg_pool_3x3": "lambda c, s: nn.AvgPool2d(3, s, 1, count_include_pad=False)",
    "max_pool_3x3": "lambda c, s: nn.MaxPool2d(3, s, 1)",
    "skip_connect": "lambda c, s: nn.Identity() if s == 1 else FactorizedReduce(c, c)",
    "sep_conv_3x3": "lambda c, s: nn.Sequential(dil_conv(c, 3, s, 1, 1), dil_conv(c, 3, 1, 1, 1))",
    "sep_conv_5x5": "lambda c, s: nn.Sequential(dil_conv(c, 5, s, 2, 1), dil_conv(c, 5, 1, 2, 1))",
    "sep_conv_7x7": "lambda c, s: nn.Sequential(dil_conv(c, 7, s, 3, 1), dil_conv(c, 7, 1, 3, 1))",
    "dil_conv_3x3": "lambda c, s: dil_conv(c, 3, s, 2, 2)",
    "dil_conv_5x5": "lambda c, s: dil_conv(c, 5, s, 4, 2)",
    "conv_7x1_1x7": ("lambda c, s: nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, (1, 7), (1, s), (0, 3), bias=False),\n"
                     "                                      nn.Conv2d(c, c, (7, 1), (s, 1), (3, 0), bias=False), "
                     "nn.BatchNorm2d(c))"),
}

DIL_CONV = '''

def dil_conv(c, kernel, stride, padding, dilation):
    """ReLU, depthwise conv, pointwise conv, BN (a sep_conv is two of these)."""
    return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, kernel, stride, padding, dilation=dilation, groups=c, bias=False),
                         nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))
'''

BODY = '''

class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset strided 1x1 convs."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        x = F.relu(x)
        if x.shape[-1] % 2 or x.shape[-2] % 2:  # odd sizes: pad, so both branches give ceil(H/2)
            x = F.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class Cell(nn.Module):
    """Node i sums its edges' ops on earlier states (0, 1: the two previous cells); the cell concatenates
    the nodes in `concat`. A reduction cell runs the edges from its inputs with stride 2."""

    def __init__(self, nodes, concat, c_prev_prev, c_prev, c, reduction, reduction_prev):
        super().__init__()
        self.preprocess0 = FactorizedReduce(c_prev_prev, c) if reduction_prev else relu_conv_bn(c_prev_prev, c)
        self.preprocess1 = relu_conv_bn(c_prev, c)
        self.nodes, self.concat, self.c, self.reduction = nodes, concat, c, reduction
        self.edges = nn.ModuleList(OPS[op](c, 2 if reduction and src < 2 else 1) for node in nodes for op, src in node)

    def forward(self, s0, s1):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        k = 0
        for node in self.nodes:
            total = None
            for _, src in node:
                h = self.edges[k](states[src])
                k += 1
                total = h if total is None else total + h
            if total is None:  # a node whose every edge is `none` outputs zeros
                h, w = states[1].shape[-2:]
                h, w = ((h + 1) // 2, (w + 1) // 2) if self.reduction else (h, w)
                total = states[1].new_zeros(states[1].shape[0], self.c, h, w)
            states.append(total)
        return torch.cat([states[i] for i in self.concat], dim=1)


class Network(nn.Module):
    """Stem, LAYERS cells (reduction cells at REDUCTION_LAYERS double the channels), global pool, linear."""

    def __init__(self):
        super().__init__()
        c = STEM_MULTIPLIER * CHANNELS
        self.stem = nn.Sequential(nn.Conv2d(IN_CHANNELS, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        c_pp, c_p, c = c, c, CHANNELS
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(LAYERS):
            reduction = i in REDUCTION_LAYERS
            c = 2 * c if reduction else c
            kind = "reduce" if reduction else "normal"
            self.cells.append(Cell(GENOTYPE[kind], GENOTYPE[kind + "_concat"], c_pp, c_p, c, reduction,
                                   reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, len(GENOTYPE[kind + "_concat"]) * c
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, NUM_CLASSES)

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.global_pooling(s1).flatten(1))


def build():
    return Network()
'''


def _cells(arch: Arch) -> dict:
    """Both cell types; a genotype without a reduction cell (PNAS) runs its normal cell with stride 2 there."""
    g = arch.genotype
    return {"normal": g["normal"], "normal_concat": g["normal_concat"],
            "reduce": g.get("reduce", g["normal"]), "reduce_concat": g.get("reduce_concat", g["normal_concat"])}


def _cells_literal(cells: dict) -> str:
    """One node (its [op, input] edges) per line."""
    lines = []
    for kind in ("normal", "reduce"):
        nodes = "".join(f"        {json.dumps(node)},\n" for node in cells[kind])
        lines.append(f'    "{kind}": [\n{nodes}    ],\n    "{kind}_concat": {cells[kind + "_concat"]!r},\n')
    return "".join(lines)


def model_py(source: ModelSource) -> str:
    cells = _cells(source.arch)
    used = sorted({op for kind in ("normal", "reduce") for node in cells[kind] for op, _ in node})
    ops = "\n".join(f"    {op!r}: {OP_SOURCE[op]}," for op in used)
    net = source.net
    layers = int(net["layers"])
    shared = "" if "reduce" in source.arch.genotype else "  # PNAS: the normal cell, with stride 2 at reductions"
    text = module_header(source, f"Architecture {source.arch.arch_id} ({source.arch.space} cell network)",
                         functional=True)
    text += (f"GENOTYPE = {{{shared}\n{_cells_literal(cells)}}}\n"
             f"CHANNELS, LAYERS, STEM_MULTIPLIER = {int(net['channels'])}, {layers}, {int(net['stem_multiplier'])}\n"
             f"REDUCTION_LAYERS = {reduction_layers(layers)!r}\n\n\n"
             "def relu_conv_bn(c_in, c_out):\n"
             "    return nn.Sequential(nn.ReLU(), nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))\n")
    if any(op.startswith(("sep_conv", "dil_conv")) for op in used):
        text += DIL_CONV
    text += f"\n\nOPS = {{\n{ops}\n}}\n" + BODY
    return text


def genotype_files(arch: Arch) -> dict[str, str]:
    """genotype.py in DARTS's notation (its Genotype namedtuple, flat [(op, input)] lists, two edges a node), which
    DARTS-family code reads as is; a cell with another in-degree has no such form and gets none."""
    cells = _cells(arch)
    if any(len(node) != 2 for kind in ("normal", "reduce") for node in cells[kind]):
        return {}
    flat = {kind: [(op, src) for node in cells[kind] for op, src in node] for kind in ("normal", "reduce")}
    return {"genotype.py": (
        f'"""Architecture {arch.arch_id} ({arch.space}) in DARTS\'s genotype notation (cnn/genotypes.py)."""\n\n'
        "from collections import namedtuple\n\n"
        'Genotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")\n\n'
        f"GENOTYPE = Genotype(\n    normal={literal(flat['normal'], 11)},\n"
        f"    normal_concat={cells['normal_concat']!r},\n    reduce={literal(flat['reduce'], 11)},\n"
        f"    reduce_concat={cells['reduce_concat']!r},\n)\n")}


register_space_exporter("darts")(SpaceExporter(model_py, genotype_files))
register_space_exporter("pnas")(SpaceExporter(model_py, genotype_files))
