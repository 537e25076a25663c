"""Per-op resource costs (params, FLOPs, memory access) for every edge of every search cell.

Measured, not tabulated: each candidate op is built as its stand-alone module with the
cell's channel count and stride, and run once on an input of the cell's real size.
FLOPs come from torch.utils.flop_counter; memory access cost (MAC, ShuffleNetV2's
definition) is, summed over leaf layers, the elements read and written plus the weights.
`none` and the identity cost nothing.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nascli.spaces.nb201 import nb201_op
from nascli.spaces.ops import Zero, make_op
from nascli.spaces.reference_kernels import reference_kernels
from nascli.supernet.networks import NB201Supernet, Supernet

METRICS = ("params", "flops", "mac")


def _op_module(net: Supernet, name: str, c: int, stride: int) -> nn.Module:
    if isinstance(net, NB201Supernet):
        return nb201_op(name, c, affine=False)
    return make_op(name, c, stride, affine=False, bn_after_pool=True)


@torch.no_grad()
def measure_op(module: nn.Module, x: torch.Tensor) -> tuple[float, float, float]:
    if isinstance(module, (Zero, nn.Identity)):
        return 0.0, 0.0, 0.0
    params = float(sum(p.numel() for p in module.parameters()))
    mac = 0.0

    def hook(mod, inputs, output):
        nonlocal mac
        if len(list(mod.children())) == 0 and not isinstance(mod, nn.Identity):
            mac += inputs[0].numel() + output.numel() + sum(p.numel() for p in mod.parameters(recurse=False))

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    counter = FlopCounterMode(display=False)
    module.eval()
    with counter, reference_kernels():  # the counter sees what each op nominally computes (fast kernels off)
        module(x)
    for h in handles:
        h.remove()
    return params, float(counter.get_total_flops()), mac


@torch.no_grad()
def cell_input_sizes(net: Supernet, shape) -> list[tuple[int, int]]:
    """Spatial size of every search cell's input (recorded from one forward pass)."""
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    x = torch.zeros(2, shape.channels, shape.height, shape.width, device=device)
    k = len(net.ops)
    samples = {t: _uniform_sample(net.num_edges, k, device) for t in net.cell_types}
    net(x, samples)
    net.train(was_training)
    return [cell.input_hw for _, cell in net.search_cells()]


def _uniform_sample(edges: int, k: int, device):
    from nascli.supernet.networks import Sample

    return Sample(torch.full((edges, k), 1.0 / k, device=device))


def edge_slots(net: Supernet, shape):
    """(cell type, cell index within its type, edge, op index, op name, channels, stride, input height, width)
    for every op of every mixed edge. A reduction cell's edges from its own nodes see the halved map."""
    sizes = cell_input_sizes(net, shape)
    seen: dict[str, int] = {}
    for (kind, cell), (h, w) in zip(net.search_cells(), sizes, strict=True):
        index = seen[kind] = seen.get(kind, -1) + 1
        for j, (group, edges) in enumerate(zip(cell.groups, cell.group_edges, strict=True)):
            gh, gw = ((h + 1) // 2, (w + 1) // 2) if cell.reduction and j >= cell.n_inputs else (h, w)
            for edge in edges:
                for k, name in enumerate(net.ops):
                    yield kind, index, edge, k, name, cell.c, group.stride, gh, gw


def _per_type(net: Supernet, values: dict[tuple, torch.Tensor], depth: int) -> dict[str, torch.Tensor]:
    counts = net.cell_counts()
    out = {t: torch.zeros(n, net.num_edges, len(net.ops), depth) for t, n in counts.items() if n}
    for (kind, index, edge, k), value in values.items():
        out[kind][index, edge, k] = value
    return out


def op_costs(net: Supernet, shape) -> dict[str, torch.Tensor]:
    """cell type -> (cells of that type) x E x K x 3 tensor of (params, flops, mac)."""
    cache: dict[tuple, tuple[float, float, float]] = {}
    values = {}
    for kind, index, edge, k, name, c, stride, h, w in edge_slots(net, shape):
        key = (name, c, stride, h, w)
        if key not in cache:
            cache[key] = measure_op(_op_module(net, name, c, stride), torch.zeros(1, c, h, w))
        values[kind, index, edge, k] = torch.tensor(cache[key])
    return _per_type(net, values, len(METRICS))


def op_latencies(net: Supernet, shape, table) -> dict[str, torch.Tensor]:
    """cell type -> (cells of that type) x E x K tensor of each op's latency in ms from a LatencyTable
    (latency_table.py) of the space: the op timed stand-alone at the edge's channels, stride and map size."""
    slots = list(edge_slots(net, shape))
    table.ensure([(name, c, stride, h, w) for *_, name, c, stride, h, w in slots])
    values = {(kind, index, edge, k): torch.tensor([table.op_ms(name, c, stride, h, w)])
              for kind, index, edge, k, name, c, stride, h, w in slots}
    return {t: v[..., 0] for t, v in _per_type(net, values, 1).items()}
