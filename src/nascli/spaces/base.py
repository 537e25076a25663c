"""The search-space plugin interface and its registry.

A space knows its vocabulary, turns a genotype into a canonical value (or a clear
UserError), samples uniformly with a seeded RNG, and builds a fixed network.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from omegaconf import OmegaConf
from torch import nn

from nascli.arch import Arch
from nascli.datashape import DataShape
from nascli.errors import UserError
from nascli.registry import load_plugins, lookup, registrar

SPACES: dict[str, type[SearchSpace]] = {}
register_space = registrar(SPACES)

BUILTIN_SPACE_MODULES = ("nascli.spaces.darts", "nascli.spaces.nb201", "nascli.spaces.pnas", "nascli.spaces.membank")


class SearchSpace(ABC):
    name: ClassVar[str]
    Config: ClassVar[type]  # dataclass schema of this space's config group
    ops: ClassVar[tuple[str, ...]]
    presets: ClassVar[dict[str, Any]] = {}
    has_benchmark: ClassVar[bool] = False  # whether benchmark_key() keys a tabular benchmark

    @property
    def slot_ops(self) -> tuple[str, ...]:
        """The ops a latency table times at every slot it sees (a space without a finite op list: none extra)."""
        return self.ops

    def __init__(self, cfg=None):
        # A space is usable without a composed config (e.g. reading an arch.json).
        self.cfg = cfg if cfg is not None else OmegaConf.structured(self.Config)

    # -- genotypes -----------------------------------------------------------------
    @abstractmethod
    def canonicalize(self, genotype: Any) -> dict:
        """Validate a genotype and return its canonical form; UserError if invalid."""

    def make(self, genotype: Any) -> Arch:
        return Arch(self.name, self.canonicalize(genotype))

    @abstractmethod
    def sample(self, rng: random.Random) -> Arch:
        """One architecture drawn uniformly from the space's sampling distribution."""

    def mutate(self, arch: Arch, rng: random.Random) -> Arch:
        """A neighbour of `arch` one small change away (regularized evolution's mutation)."""
        raise UserError(f"space '{self.name}' defines no mutation, so evolution cannot search it; "
                        f"use one of: {', '.join(mutable_spaces())}")

    def enumerate(self) -> list[Arch]:
        """Every architecture of a finite space, in a fixed order (`nas rank --all`)."""
        raise UserError(f"space '{self.name}' is too large to list every architecture; rank a sample with "
                        "--sample N instead of --all")

    def preset(self, name: str) -> Arch:
        genotype = lookup(self.presets, name, f"{self.name} preset")
        return self.make(genotype)

    def from_ref(self, ref: str) -> Arch:
        """Resolve the NAME in a `space:NAME` reference (a preset unless a space says more)."""
        return self.preset(ref)

    def describe(self, arch: Arch) -> str:
        """A short human-readable form for tables."""
        return arch.arch_id

    def functional_key(self, arch: Arch) -> str:
        """Equal for architectures that compute the same function (correlate collapses them)."""
        return arch.arch_id

    def size_key(self, arch: Arch) -> str:
        """Equal for architectures whose networks have equal parameter and FLOP counts and run the same ops at
        the same shapes (so a count, or a latency-table prediction, can be reused); the arch_id unless a space
        knows better."""
        return arch.arch_id

    # -- networks ------------------------------------------------------------------
    @abstractmethod
    def build(self, arch: Arch, shape: DataShape, net: Any, auxiliary: bool = False) -> nn.Module:
        """A fixed network for `arch`; `net` is the size node (cfg.search or cfg.retrain)."""

    def op_module(self, name: str, c: int, stride: int) -> nn.Module:
        """The stand-alone module of candidate op `name` as this space's networks run it (latency tables)."""
        raise UserError(f"space '{self.name}' has no per-op latency table (its networks are not built from "
                        "candidate ops on cell edges); time whole networks with proxy=latency latency.method=measured")

    # -- ground truth ----------------------------------------------------------------
    def benchmark_key(self, arch: Arch) -> str:
        """The key of `arch` in a tabular benchmark (spaces with has_benchmark only)."""
        raise UserError(f"space '{self.name}' has no benchmark table; benchmark.table works with space=nb201")


def load_space_plugins() -> None:
    load_plugins("nascli.spaces", BUILTIN_SPACE_MODULES)


def space_class(name: str) -> type[SearchSpace]:
    load_space_plugins()
    return lookup(SPACES, name, "space")


def get_space(name: str, cfg=None) -> SearchSpace:
    return space_class(name)(cfg)


def expect(cond: bool, message: str) -> None:
    if not cond:
        raise UserError(message)


def mutable_spaces() -> list[str]:
    """Registered spaces that define mutate()."""
    load_space_plugins()
    return sorted(name for name, cls in SPACES.items() if cls.mutate is not SearchSpace.mutate)
