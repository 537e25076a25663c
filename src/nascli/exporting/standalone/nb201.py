"""model.py and the arch string for NAS-Bench-201: NB201's exact skeleton (stem, three stages of cells joined by
residual reduction blocks) with one cell's six ops, the module tree of nascli's NB201Network."""

from __future__ import annotations

from nascli.arch import Arch
from nascli.exporting.standalone import ModelSource, SpaceExporter, module_header, register_space_exporter
from nascli.spaces.nb201 import EDGES, to_arch_str

OP_SOURCE = {
    "none": "lambda c: Zero()",
    "skip_connect": "lambda c: nn.Identity()",
    "nor_conv_1x1": "lambda c: relu_conv_bn(c, c, 1, 1, 0)",
    "nor_conv_3x3": "lambda c: relu_conv_bn(c, c, 3, 1, 1)",
    "avg_pool_3x3": "lambda c: nn.AvgPool2d(3, 1, 1, count_include_pad=False)",
}

ZERO = '''

class Zero(nn.Module):
    """The `none` op: zeros shaped like its input."""

    def forward(self, x):
        return x.mul(0.0)
'''

BODY = '''

class Cell(nn.Module):
    """Node i (1..3) sums one op on every earlier node; node 0 is the cell input, node 3 its output."""

    def __init__(self, c):
        super().__init__()
        self.edges = nn.ModuleList(OPS[op](c) for op in CELL)

    def forward(self, x):
        nodes = [x]
        for i in (1, 2, 3):
            nodes.append(sum(self.edges[k](nodes[src]) for k, (to, src) in enumerate(EDGES) if to == i))
        return nodes[-1]


class ResidualReduction(nn.Module):
    """Between stages: two ReLU-conv-BN (the first with stride 2) plus an avg-pool + 1x1 shortcut."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv_a = relu_conv_bn(c_in, c_out, 3, 2, 1)
        self.conv_b = relu_conv_bn(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x):
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class Network(nn.Module):
    def __init__(self):
        super().__init__()
        c = CHANNELS
        self.stem = nn.Sequential(nn.Conv2d(IN_CHANNELS, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        self.cells = nn.ModuleList()
        for stage in range(3):
            if stage > 0:
                self.cells.append(ResidualReduction(c, 2 * c))
                c *= 2
            self.cells.extend(Cell(c) for _ in range(CELLS_PER_STAGE))
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU())
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, NUM_CLASSES)

    def forward(self, x):
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self.classifier(self.global_pooling(self.lastact(x)).flatten(1))


def build():
    return Network()
'''


def _edge_ops(arch: Arch) -> list[str]:
    return [op for node in arch.genotype["cell"] for op, _ in node]


def model_py(source: ModelSource) -> str:
    ops = _edge_ops(source.arch)
    used = [op for op in OP_SOURCE if op in ops]
    text = module_header(source, f"NAS-Bench-201 cell {to_arch_str(source.arch.genotype['cell'])} "
                                 f"(architecture {source.arch.arch_id})")
    text += (f"CELL = {ops!r}  # one op per edge, in EDGES order\n"
             f"EDGES = {EDGES!r}  # (to node, from node)\n"
             f"CHANNELS, CELLS_PER_STAGE = {int(source.net['channels'])}, {int(source.net['cells_per_stage'])}\n\n\n"
             "def relu_conv_bn(c_in, c_out, kernel, stride, padding):\n"
             "    return nn.Sequential(nn.ReLU(), nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False), "
             "nn.BatchNorm2d(c_out))\n")
    if "none" in used:
        text += ZERO
    text += "\n\nOPS = {\n" + "\n".join(f"    {op!r}: {OP_SOURCE[op]}," for op in used) + "\n}\n" + BODY
    return text


def genotype_files(arch: Arch) -> dict[str, str]:
    """NB201's arch string, the key of its benchmark table and of its API's query_index_by_arch."""
    return {"arch_str.txt": to_arch_str(arch.genotype["cell"]) + "\n"}


register_space_exporter("nb201")(SpaceExporter(model_py, genotype_files))
