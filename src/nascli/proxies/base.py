"""The proxy interface and its registry.

Two kinds of proxy share one registry and one `proxy=` list:

- a *network* proxy maps one freshly initialised network (a `Probe`, which makes every measurement
  once and shares it between proxies) to one number;
- a *combined* proxy maps the scores of several network proxies over a whole set of architectures
  to one column (a rank average, a majority vote): it is relative to the set it was computed on.

`direction` says which way is better, so correlation code applies it instead of taking abs() of a
correlation. `degenerate` documents what a network whose output ignores its input scores: always the
worst value for the direction, never the best.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from nascli.errors import UserError
from nascli.registry import load_plugins, registrar

# Measurements a network proxy can read from its Probe; the probe makes the ones requested, once.
MEASUREMENTS = ("activation_kernel", "loss_grads", "input_grad", "synflow", "size", "latency", "relu_patterns",
                "feature_corr", "output_grads", "hessian_grad", "half_batch_grads", "block_features", "weights")

# The worst score of a proxy that has no least value (plain, grasp, AZ-NAS's progressivity and trainability):
# a degenerate network must rank below every working one, and a non-finite score counts as a failure.
LOWEST = -sys.float_info.max


@dataclass(frozen=True)
class Proxy:
    name: str
    fn: Callable
    direction: int = 1  # +1: higher is better, -1: lower is better
    uses: frozenset[str] = frozenset()  # Probe measurements it reads
    batch_size: int | None = 64  # the images per batch its paper used; None: reads no data
    about: str = ""
    degenerate: str = ""  # its score for a network whose output does not depend on its input
    members: tuple[str, ...] | None = None  # combined proxies: the network proxies they combine

    @property
    def combined(self) -> bool:
        return self.members is not None

    @property
    def needs_data(self) -> bool:
        return self.batch_size is not None and not self.combined


PROXIES: dict[str, Proxy] = {}
_register = registrar(PROXIES)


def register_proxy(name: str, *, direction: int = 1, uses: tuple[str, ...] = (), batch_size: int | None = 64,
                   about: str = "", degenerate: str = ""):
    """Decorator: register fn(probe, batch_size) -> float, a score of one network."""
    unknown = set(uses) - set(MEASUREMENTS)
    if unknown:
        raise ValueError(f"proxy {name!r} uses unknown measurements {sorted(unknown)}; known: {MEASUREMENTS}")

    def wrap(fn):
        _register(name)(Proxy(name, fn, direction, frozenset(uses), batch_size, about, degenerate))
        return fn

    return wrap


def register_combined(name: str, *, members: tuple[str, ...] = (), about: str = ""):
    """Decorator: register fn(scores: DataFrame of member columns, directions) -> array, a set-level score.

    An empty `members` means the members are chosen when the proxy is used (`rank_mean`).
    """

    def wrap(fn):
        _register(name)(Proxy(name, fn, 1, frozenset(), None, about, "", tuple(members)))
        return fn

    return wrap


BUILTIN = ("nascli.proxies.baselines", "nascli.proxies.zero_cost", "nascli.proxies.naslib_set",
           "nascli.proxies.recent", "nascli.proxies.combined")


def load_proxies() -> dict[str, Proxy]:
    load_plugins("nascli.proxies", BUILTIN)
    return PROXIES


@dataclass
class ProxyPlan:
    """What `proxy=a,b,c` asks for: network proxies to run per architecture (members of the combined
    ones included), then combined proxies over the set; `columns` are the requested ones, in order."""

    network: list[Proxy]
    combined: list[Proxy]
    members: dict[str, tuple[str, ...]] = field(default_factory=dict)  # combined name -> member proxies
    columns: list[str] = field(default_factory=list)


def get_proxies(names: str | list[str]) -> list[Proxy]:
    """Parse `synflow,naswot,params` (or a list) into proxies; UserError names the known ones."""
    load_proxies()
    if isinstance(names, str):
        names = names.split(",")
    names = [str(n).strip() for n in names if str(n).strip()]
    if not names:
        raise UserError(f"no proxy given; use proxy=NAME with NAME one of: {', '.join(sorted(PROXIES))}")
    unknown = [n for n in names if n not in PROXIES]
    if unknown:
        raise UserError(f"unknown proxy '{unknown[0]}'; choose from: {', '.join(sorted(PROXIES))} "
                        "(or a search run for its strategy's score)")
    return [PROXIES[n] for n in dict.fromkeys(names)]


def odd_vote(members: list[str]) -> list[str]:
    """vote's members as given; a majority needs an odd number of them (UserError otherwise)."""
    if len(members) % 2 == 0:
        raise UserError(f"vote=... takes a majority of an odd number of proxies; got {len(members)}: "
                        f"{','.join(members)}")
    return members


def plan_proxies(names: str | list[str], rank_mean: list[str] | None = None, vote: list[str] | None = None) -> ProxyPlan:
    """Resolve the requested proxies, adding the network proxies that combined ones need. `rank_mean` and `vote`
    name those proxies' members (vote's default: its paper's three)."""
    requested = get_proxies(names)
    members: dict[str, tuple[str, ...]] = {}
    for p in requested:
        if not p.combined:
            continue
        if p.name == "vote" and vote:
            chosen = tuple(odd_vote(vote))
        else:
            chosen = tuple(p.members) or tuple(rank_mean or [q.name for q in requested if not q.combined])
        inner = get_proxies(list(chosen))
        nested = [q.name for q in inner if q.combined]
        if nested:
            raise UserError(f"{p.name} combines network proxies, not '{nested[0]}'")
        if len(inner) < 2:
            raise UserError(f"{p.name} needs at least two proxies to combine; list them, e.g. "
                            f"proxy=synflow,naswot,{p.name} or rank_mean=synflow,naswot")
        members[p.name] = tuple(q.name for q in inner)
    network = [p for p in requested if not p.combined]
    for combo in members.values():
        network += [PROXIES[n] for n in combo if PROXIES[n] not in network]
    return ProxyPlan(network, [p for p in requested if p.combined], members, [p.name for p in requested])


def weight_layers(model: nn.Module) -> list[torch.Tensor]:
    """Weights of conv and linear layers: where the zero-cost literature measures saliency."""
    return [m.weight for m in model.modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight is not None and m.weight.requires_grad]
