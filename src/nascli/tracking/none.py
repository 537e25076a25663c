"""`tracking=none` (the default): the run directory alone."""

from __future__ import annotations

from dataclasses import dataclass

from nascli.tracking.base import Tracker, register_tracker


@dataclass
class NoTrackerConfig:
    name: str = "none"


@register_tracker("none")
class NoTracker(Tracker):
    Config = NoTrackerConfig

    def start(self, run, cfg) -> None:
        pass

    def scalars(self, event, values, step) -> None:
        pass

    def close(self, run) -> None:
        pass
