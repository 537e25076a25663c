"""Parameter and FLOP counts of a network (FLOPs through torch.utils.flop_counter)."""

from __future__ import annotations

import json

import torch
from omegaconf import OmegaConf
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nascli.spaces.base import DataShape
from nascli.spaces.reference_kernels import reference_kernels


def count_params(model: nn.Module) -> int:
    """Trainable parameters, excluding the auxiliary head (as DARTS and NB201 report them)."""
    return sum(p.numel() for name, p in model.named_parameters() if "auxiliary" not in name and p.requires_grad)


@torch.no_grad()
def count_flops(model: nn.Module, shape: DataShape) -> int:
    """FLOPs of one forward pass on one image (a multiply-add counts as 2)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x = torch.zeros(1, shape.channels, shape.height, shape.width, device=device)
    counter = FlopCounterMode(display=False)
    with counter, reference_kernels():  # the counter sees what each op nominally computes (fast kernels off)
        model(x)
    model.train(was_training)
    return int(counter.get_total_flops())


def cost(model: nn.Module, shape: DataShape) -> dict[str, int]:
    return {"params": count_params(model), "flops": count_flops(model, shape)}


_COSTS: dict[tuple, dict[str, int]] = {}
_COSTS_LIMIT = 100_000


def arch_cost(space, arch, shape: DataShape, net=None) -> dict[str, int]:
    """Params and FLOPs of `arch` built at the space's retrain size (what `nas retrain` trains).

    Remembered per process by the space's size_key (NB201: 210 sizes for 15,625 cells): building and
    FLOP-counting a network took 0.13 s, more than a table-evaluated search spends on everything else."""
    net = net if net is not None else space.cfg.retrain
    size = OmegaConf.to_container(net, resolve=True) if OmegaConf.is_config(net) else dict(net)
    key = (space.name, space.size_key(arch), shape, json.dumps(size, sort_keys=True))
    if key not in _COSTS:
        if len(_COSTS) >= _COSTS_LIMIT:
            _COSTS.clear()
        _COSTS[key] = cost(space.build(arch, shape, net), shape)
    return dict(_COSTS[key])
