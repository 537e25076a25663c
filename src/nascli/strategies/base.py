"""The strategy plugin interface and its lifecycle.

    strategy = cls(cfg.strategy)      # config only: cheap, no data, no model
    strategy.setup(ctx)               # check the config against the space/data, build what search needs
    candidates = strategy.search(ctx) # the inner loop; every evaluated architecture, higher score = better
                                      # it calls ctx.checkpoint(build_state) at each consistent point
    state = strategy.state_dict()     # saved to checkpoints/strategy.pt (what scoring needs)
    later: fresh.load_state_dict(state); fresh.score(archs, ctx)   # `nas rank RUN`
    resume: fresh.setup(ctx); fresh.resume(saved); fresh.search(ctx)   # `nas search --resume RUN`:
                                      # continues from the last build_state() to the same result bytes

A strategy owns its inner loop (`search`) and its proxy (`score`); the runner in
`nascli.commands.search`, not the strategy, writes archs.csv, ranked.csv and arch.json.
Third-party strategies register with `@register_strategy("name")` in a module named by
an entry point of the `nascli.strategies` group.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from omegaconf import DictConfig

from nascli.arch import Arch
from nascli.data import Splits
from nascli.device import Runtime
from nascli.errors import UserError
from nascli.precision import NETWORK
from nascli.registry import load_plugins, lookup, registrar
from nascli.spaces.base import SearchSpace

STRATEGIES: dict[str, type[Strategy]] = {}
register_strategy = registrar(STRATEGIES)

BUILTIN_STRATEGY_MODULES = ("nascli.strategies.random_search", "nascli.strategies.snas", "nascli.strategies.pnas",
                            "nascli.strategies.smash", "nascli.strategies.evolution")


@dataclass
class Candidate:
    """One evaluated architecture. `extra` holds strategy-specific columns for archs.csv."""

    arch: Arch
    score: float
    status: str = "ok"  # ok | failed
    extra: dict[str, Any] = field(default_factory=dict)

    def to_plain(self) -> dict:
        """Plain Python values only (what a weights-only checkpoint load accepts)."""
        def value(v):
            return v.item() if hasattr(v, "item") else v

        return {"arch": self.arch.to_json(), "score": float(self.score), "status": self.status,
                "extra": {k: value(v) for k, v in self.extra.items()}}

    @classmethod
    def from_plain(cls, d: dict) -> Candidate:
        return cls(Arch(d["arch"]["space"], d["arch"]["genotype"]), d["score"], d["status"], d["extra"])


@dataclass
class SearchContext:
    """What a strategy may use: the config, the space, the data, the device and the run."""

    cfg: DictConfig
    space: SearchSpace
    splits: Splits
    runtime: Runtime
    generator: torch.Generator
    run: Any = None  # RunDir, or None when scoring outside a search run
    benchmark: Any = None  # BenchmarkTable when benchmark.table is set
    warnings: list[str] = field(default_factory=list)
    checkpointer: Any = None  # resume.Checkpointer during `nas search`, None when scoring
    executor: Any = None  # executors.Executor for independent candidates; None: one after another here
    muted: bool = False  # a resumed strategy replaying work whose records metrics.jsonl already holds

    @property
    def seed(self) -> int:
        return int(self.cfg.seed)

    def log(self, **record: Any) -> None:
        if self.run is not None and not self.muted:
            self.run.log(**record)

    def checkpoint(self, build_state, boundary: bool = False) -> None:
        """A consistent point of the search: `build_state()` is what resume() needs to continue from here.
        Saved when due (period, boundary, stop signal); a stop signal then raises Interrupted."""
        if self.checkpointer is not None:
            self.checkpointer.step(lambda: {"strategy": build_state(), "warnings": list(self.warnings),
                                            "generator": self.generator.get_state()}, boundary)
        else:
            from nascli.resume import check_stop

            check_stop()

    def warn(self, message: str) -> None:
        """Something the user should know about the result (printed at the end, kept in the manifest)."""
        self.warnings.append(message)
        self.log(event="warning", message=message)

    def truth(self, arch: Arch) -> float | None:
        """The benchmark's true accuracy of `arch` (benchmark.metric), if a table is configured."""
        return None if self.benchmark is None else self.benchmark.value(self.space, arch)


class Strategy(ABC):
    name: ClassVar[str]
    Config: ClassVar[type]  # dataclass schema of this strategy's config group
    # Spaces the strategy can search; None means every registered space.
    spaces: ClassVar[tuple[str, ...] | None] = None
    # What the search trains, for `device.amp` / `device.channels_last` = auto (nascli.precision).
    workload: ClassVar[str] = NETWORK

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg

    # What the strategy's own score() is, when it is an estimator that scores any architecture of the space
    # cheaply (`nas rank RUN`); None when score() would train every architecture (random, evolution).
    estimator: ClassVar[str | None] = None

    @classmethod
    def check_config(cls, cfg: DictConfig, space: SearchSpace) -> None:
        """Refuse a config this strategy cannot run on `space` (UserError), before any run directory exists."""
        del cfg, space

    def setup(self, ctx: SearchContext) -> None:
        """Check the config against ctx (space, data, budget) and raise UserError before any work."""
        del ctx

    @abstractmethod
    def search(self, ctx: SearchContext) -> list[Candidate]:
        """Run the search; return every evaluated candidate (higher score = better)."""

    @abstractmethod
    def score(self, archs: Sequence[Arch], ctx: SearchContext) -> list[float]:
        """The strategy's proxy score for arbitrary architectures of the space (for `nas rank`)."""

    def score_details(self, archs: Sequence[Arch], ctx: SearchContext) -> tuple[list[float], list[dict]]:
        """score() plus per-architecture extras (e.g. an ensemble's spread) that `nas rank` writes beside it."""
        return list(self.score(archs, ctx)), [{} for _ in archs]

    def state_dict(self) -> dict:
        """Everything needed to score later (saved to checkpoints/strategy.pt)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        del state

    def resume(self, state: dict) -> None:
        """Make the next search() continue from a state this strategy gave ctx.checkpoint()."""
        del state
        raise UserError(f"the {self.name} strategy cannot resume a run; start it again")


class TrainedStrategy(Strategy):
    """A strategy whose score() needs the model its search trained.

    A restored checkpoint stays a plain state dict until score() rebuilds the model from it:
    commands that only read a run never pay for building a supernet or HyperNet.
    """

    trained: ClassVar[str]  # what the search trains, for the error message

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        self._state: dict | None = None

    @abstractmethod
    def live_state(self) -> dict | None:
        """The trained model's state, or None while there is no live model."""

    @abstractmethod
    def drop_live(self) -> None:
        """Forget the live model (a loaded state replaces it)."""

    def restored_state(self) -> dict:
        if self._state is None:
            raise UserError(f"the {self.name} strategy has no trained {self.trained}; score from a finished search run")
        return self._state

    def state_dict(self) -> dict:
        live = self.live_state()
        return dict(self._state or {}) if live is None else live

    def load_state_dict(self, state: dict) -> None:
        self._state = state
        self.drop_live()


def load_strategy_plugins() -> None:
    load_plugins("nascli.strategies", BUILTIN_STRATEGY_MODULES)


def strategy_class(name: str) -> type[Strategy]:
    load_strategy_plugins()
    return lookup(STRATEGIES, name, "strategy")
