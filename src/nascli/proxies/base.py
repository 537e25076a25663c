"""The proxy interface and its registry.

A proxy maps a freshly initialised network (and, for most, a few batches of training data)
to one number. `direction` says which way is better, so correlation code applies it instead
of taking abs() of a correlation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from nascli.errors import UserError
from nascli.registry import registrar


@dataclass(frozen=True)
class Proxy:
    name: str
    fn: Callable[..., float]
    direction: int = 1  # +1: higher is better, -1: lower is better
    needs_data: bool = True
    needs_grad: bool = True
    about: str = ""


PROXIES: dict[str, Proxy] = {}
_register = registrar(PROXIES)


def register_proxy(name: str, *, direction: int = 1, needs_data: bool = True, needs_grad: bool = True,
                   about: str = ""):
    """Decorator: register fn(model, batches, shape) -> float under `name`."""

    def wrap(fn):
        _register(name)(Proxy(name, fn, direction, needs_data, needs_grad, about))
        return fn

    return wrap


def get_proxies(names: str | list[str]) -> list[Proxy]:
    """Parse `synflow,naswot,params` (or a list) into proxies; UserError names the known ones."""
    import nascli.proxies.baselines  # noqa: F401  (registration)
    import nascli.proxies.zero_cost  # noqa: F401

    if isinstance(names, str):
        names = [n for n in names.split(",")]
    names = [str(n).strip() for n in names if str(n).strip()]
    if not names:
        raise UserError(f"no proxy given; use proxy=NAME with NAME one of: {', '.join(sorted(PROXIES))}")
    unknown = [n for n in names if n not in PROXIES]
    if unknown:
        raise UserError(f"unknown proxy '{unknown[0]}'; choose from: {', '.join(sorted(PROXIES))} "
                        "(or a search run for its strategy's score)")
    return [PROXIES[n] for n in dict.fromkeys(names)]


def weight_layers(model: nn.Module) -> list[torch.Tensor]:
    """Weights of conv and linear layers: where the zero-cost literature measures saliency."""
    return [m.weight for m in model.modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight is not None and m.weight.requires_grad]
