"""Score architectures with a search run's own estimator, a chunk of architectures per task, on any executor.

The main process restores the run's strategy once and makes what every score reads (`scoring_inputs`: the
val images, SNAS's recalibration batches, SMASH's z draws); each worker then rebuilds the trained model once
from the state and scores its chunks (`score_prepared`). A score depends on the architecture alone, never on
which worker ran it or in which order, so a pool gives the same scores as one process.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

import torch
from omegaconf import OmegaConf

from nascli.data import Split, Splits
from nascli.device import Runtime, pick_device
from nascli.spaces.base import DataShape, get_space
from nascli.strategies.base import SearchContext, Strategy, strategy_class


@dataclass
class StrategyScoringSetup:
    """What every task shares (sent to each worker once)."""

    token: str  # names this setup in a worker's cache of restored strategies
    strategy: str
    run_cfg: dict  # the search run's config
    state: dict  # the strategy's saved state (CPU tensors)
    inputs: dict  # strategy.scoring_inputs(...): CPU tensors
    shape: DataShape
    classes: list[str]
    runtime: Runtime  # the precision the run searched in; the device is each worker's own


_LIVE: dict[str, tuple[Strategy, SearchContext]] = {}  # token -> restored strategy, per process (the latest only)


def shapes_only(shape: DataShape, classes: list[str]) -> Splits:
    """Splits with no images that still tell a model builder the data's shape: a worker scores from the
    prepared inputs and never reads a split."""
    empty = Split(torch.empty(0, shape.channels, shape.height, shape.width, dtype=torch.uint8),
                  torch.empty(0, dtype=torch.int64))
    return Splits("prepared", empty, empty, empty, list(classes), [0.0] * shape.channels, [1.0] * shape.channels)


def make_setup(strategy: Strategy, ctx: SearchContext, val_images: int | None,
               scrambled: bool = False) -> StrategyScoringSetup:
    inputs = strategy.scoring_inputs(ctx, val_images, scrambled)
    return StrategyScoringSetup(uuid.uuid4().hex, strategy.name, OmegaConf.to_container(ctx.cfg),
                                strategy.state_dict(), inputs, ctx.splits.shape, list(ctx.splits.classes),
                                ctx.runtime)


def _restored(setup: StrategyScoringSetup) -> tuple[Strategy, SearchContext]:
    if setup.token not in _LIVE:
        _LIVE.clear()
        cfg = OmegaConf.create(setup.run_cfg)
        strategy = strategy_class(setup.strategy)(cfg.strategy)
        strategy.load_state_dict(setup.state)
        space = get_space(cfg.space.name, cfg.space)
        runtime = replace(setup.runtime, device=pick_device(cfg.device))
        ctx = SearchContext(cfg, space, shapes_only(setup.shape, setup.classes), runtime,
                            torch.Generator().manual_seed(int(cfg.seed)))
        _LIVE[setup.token] = (strategy, ctx)
    return _LIVE[setup.token]


def score_strategy_chunk(setup: StrategyScoringSetup, genotypes: list[dict]) -> list[dict[str, Any]]:
    """One row per genotype: `score` (NaN + `error` when the architecture could not be scored), `degenerate`."""
    strategy, ctx = _restored(setup)
    archs = [ctx.space.make(g) for g in genotypes]
    return strategy.score_prepared(archs, setup.inputs, ctx)
