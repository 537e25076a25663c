"""The shape of a dataset's images and labels: what data loaders produce and network builders consume."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataShape:
    """What a network builder needs to know about the data."""

    channels: int
    height: int
    width: int
    num_classes: int
