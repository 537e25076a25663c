"""Size baselines: every proxy must beat simply counting parameters or FLOPs."""

from __future__ import annotations

from torch import nn

from nascli.measure import count_flops, count_params
from nascli.proxies.base import register_proxy


@register_proxy("params", needs_data=False, needs_grad=False, about="trainable parameters (bigger ranks higher)")
def params(model: nn.Module, batches, shape) -> float:
    return float(count_params(model))


@register_proxy("flops", needs_data=False, needs_grad=False, about="FLOPs of one image (bigger ranks higher)")
def flops(model: nn.Module, batches, shape) -> float:
    return float(count_flops(model, shape))
