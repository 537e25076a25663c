"""The dataset registry and the split logic every dataset shares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

from nascli.datashape import DataShape
from nascli.registry import load_plugins, lookup, registrar

# The test split of a dataset that has none of its own is carved with this fixed seed,
# so every run, whatever its split_seed, reports on the same test images.
TEST_CARVE_SEED = 0


@dataclass
class DatasetConfig:
    name: str = "digits"
    root: str = "~/.cache/nascli/data"
    download: bool = True
    cache_dir: str = "~/.cache/nascli/cache"
    val_fraction: float = 0.2
    test_fraction: float = 0.2  # only for datasets without a test split of their own
    split_seed: int = 0
    subset: int | None = None  # use this many training images (seeded, stratified)
    test_subset: int | None = None  # use this many test images (seeded by test_subset_seed, stratified)
    test_subset_seed: int = 0  # its own seed: the test images do not change with split_seed
    resize: int | None = None  # square side to resize every image to
    crop_padding: int = 0  # random crop after zero padding (training batches only)
    flip: bool = False  # random horizontal flip (training batches only)
    mean: list[float] | None = None  # per-channel; computed on the train split when null
    std: list[float] | None = None


@dataclass
class RawData:
    """What a dataset loader returns: uint8 images N x C x H x W and int64 labels."""

    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor | None = None
    y_test: torch.Tensor | None = None
    classes: list[str] = field(default_factory=list)


@dataclass
class Split:
    x: torch.Tensor  # uint8, N x C x H x W
    y: torch.Tensor  # int64

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device) -> Split:
        return Split(self.x.to(device), self.y.to(device))


@dataclass
class Splits:
    name: str
    train: Split
    val: Split
    test: Split
    classes: list[str]
    mean: list[float]
    std: list[float]

    @property
    def shape(self) -> DataShape:
        _, c, h, w = self.train.x.shape
        return DataShape(c, h, w, len(self.classes))

    def to(self, device) -> Splits:
        return Splits(self.name, self.train.to(device), self.val.to(device), self.test.to(device),
                      self.classes, self.mean, self.std)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def input_record(self, resize: int | None) -> dict:
        """What a network trained on these splits takes: images of this shape, (pixels / 255 - mean) / std, and
        the class names in label order (retrain checkpoints carry it; `nas export` writes it beside the model)."""
        s = self.shape
        return {"channels": s.channels, "height": s.height, "width": s.width, "num_classes": s.num_classes,
                "classes": list(self.classes), "mean": list(self.mean), "std": list(self.std),
                "resize": resize, "dataset": self.name}


Loader = Callable[[DatasetConfig], RawData]
DATASETS: dict[str, Loader] = {}
register_dataset = registrar(DATASETS)
BUILTIN_DATASET_MODULES = ("nascli.data.sources",)


def expand(path: str) -> Path:
    return Path(path).expanduser()


def _stratified_pick(y: np.ndarray, size: int | float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (picked, rest) with `size` picked, class proportions kept."""
    idx = np.arange(len(y))
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    picked, rest = train_test_split(idx, train_size=size, stratify=stratify, random_state=seed)
    return np.sort(picked), np.sort(rest)


def _resize(x: torch.Tensor, side: int) -> torch.Tensor:
    if x.shape[-1] == side and x.shape[-2] == side:
        return x
    out = []
    for chunk in x.split(4096):  # bounded memory for big sets
        r = F.interpolate(chunk.float(), size=(side, side), mode="bilinear", antialias=True, align_corners=False)
        out.append(r.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out)


def load_splits(cfg) -> Splits:
    """Load the dataset named by cfg.name and split it (train / val / test)."""
    load_plugins("nascli.datasets", BUILTIN_DATASET_MODULES)
    loader = lookup(DATASETS, cfg.name, "dataset")
    raw = loader(cfg)
    x, y = raw.x, raw.y
    if raw.x_test is None:
        test_idx, pool_idx = _stratified_pick(y.numpy(), float(cfg.test_fraction), TEST_CARVE_SEED)
        x_test, y_test = x[test_idx], y[test_idx]
        x, y = x[pool_idx], y[pool_idx]
    else:
        x_test, y_test = raw.x_test, raw.y_test
    if cfg.subset is not None and cfg.subset < len(y):
        keep, _ = _stratified_pick(y.numpy(), int(cfg.subset), int(cfg.split_seed))
        x, y = x[keep], y[keep]
    if cfg.test_subset is not None and cfg.test_subset < len(y_test):
        keep, _ = _stratified_pick(y_test.numpy(), int(cfg.test_subset), int(cfg.test_subset_seed))
        x_test, y_test = x_test[keep], y_test[keep]
    val_idx, train_idx = _stratified_pick(y.numpy(), float(cfg.val_fraction), int(cfg.split_seed))
    if cfg.resize:
        x, x_test = _resize(x, int(cfg.resize)), _resize(x_test, int(cfg.resize))
    train = Split(x[train_idx].contiguous(), y[train_idx].contiguous())
    val = Split(x[val_idx].contiguous(), y[val_idx].contiguous())
    test = Split(x_test.contiguous(), y_test.contiguous())
    mean, std = cfg.mean, cfg.std
    if mean is None or std is None:
        # Statistics of the train split only: val and test must not leak into training.
        pixels = train.x.float().div_(255).transpose(0, 1).reshape(train.x.shape[1], -1)
        mean = [round(v, 6) for v in pixels.mean(1).tolist()] if mean is None else list(mean)
        std = [round(max(v, 1e-3), 6) for v in pixels.std(1).tolist()] if std is None else list(std)
    return Splits(cfg.name, train, val, test, list(raw.classes), list(mean), list(std))
