"""Splits are disjoint, seeded and stratified; augmentation is batched and reproducible."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from nascli.data import Augment, DatasetConfig, TensorLoader, load_splits
from nascli.data.loader import cutout, random_crop
from nascli.errors import UserError

from .conftest import SHARED, needs_shared


def dataset_cfg(**kw):
    kw.setdefault("cache_dir", os.environ["NASCLI_CACHE"])
    return OmegaConf.merge(OmegaConf.structured(DatasetConfig), kw)


def test_digits_splits_partition_the_dataset():
    from sklearn.datasets import load_digits

    s = load_splits(dataset_cfg())
    sizes = s.sizes()
    assert sizes["test"] == pytest.approx(0.2 * 1797, abs=1) and sizes["val"] == pytest.approx(0.2 * 1438, abs=1)
    assert s.shape.channels == 1 and s.shape.height == 8 and s.shape.num_classes == 10
    # train + val + test is exactly the dataset, each image used once (as a multiset of rows).
    parts = torch.cat([s.train.x, s.val.x, s.test.x]).reshape(1797, -1)
    labels = torch.cat([s.train.y, s.val.y, s.test.y])
    everything = np.round(load_digits().images * (255 / 16)).astype(np.uint8).reshape(1797, -1)
    ours = sorted(bytes(r) + bytes([int(y)]) for r, y in zip(parts.numpy(), labels.numpy(), strict=True))
    theirs = sorted(bytes(r) + bytes([int(y)]) for r, y in zip(everything, load_digits().target, strict=True))
    assert ours == theirs
    counts = np.bincount(s.val.y.numpy(), minlength=10)
    assert counts.min() >= 25  # stratified: every class is in val in roughly its share


def test_split_seed_changes_val_but_never_test():
    a = load_splits(dataset_cfg(split_seed=0))
    b = load_splits(dataset_cfg(split_seed=1))
    assert torch.equal(a.test.x, b.test.x)
    assert not torch.equal(a.val.y, b.val.y)
    c = load_splits(dataset_cfg(split_seed=0))
    assert torch.equal(a.val.x, c.val.x) and torch.equal(a.train.y, c.train.y)


def test_subset_and_resize():
    s = load_splits(dataset_cfg(subset=500, resize=16))
    assert len(s.train) + len(s.val) == 500
    assert s.train.x.shape[-2:] == (16, 16) and s.train.x.dtype == torch.uint8


def test_loader_batches_are_normalised_and_reproducible():
    s = load_splits(dataset_cfg())

    def first_batch(seed):
        loader = TensorLoader(s.train, 32, s.mean, s.std, shuffle=True, augment=Augment(1, True, 3),
                              generator=torch.Generator().manual_seed(seed))
        return next(iter(loader))

    (x1, y1), (x2, y2), (x3, _) = first_batch(0), first_batch(0), first_batch(1)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3)
    full = TensorLoader(s.train, 4096, s.mean, s.std)
    xb, _ = next(iter(full))
    assert abs(xb.mean().item()) < 0.05 and abs(xb.std().item() - 1) < 0.05


def test_batched_crop_and_cutout():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4) + 1
    cropped = random_crop(x, 1, g)
    assert cropped.shape == x.shape
    # each crop is a shifted window: its values come from the image or the zero padding
    for i in range(2):
        assert set(cropped[i].unique().tolist()) <= set(x[i].unique().tolist()) | {0.0}
    holes = cutout(torch.ones(8, 3, 10, 10), 4, g)
    zeros_per_image = (holes[:, 0] == 0).sum(dim=(1, 2))
    assert (zeros_per_image > 0).all() and (zeros_per_image <= 16).all()
    assert torch.equal(holes[:, 0] == 0, holes[:, 2] == 0)  # same square on every channel


def _png(color: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((6, 6, 3), color, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_imagefolder_reads_folders_and_tarballs(tmp_path):
    root = tmp_path / "imgs"
    for split, n in (("train", 10), ("test", 4)):
        for cls, color in (("cat", 10), ("dog", 200)):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                (d / f"{i:03d}.png").write_bytes(_png(color))
    s = load_splits(dataset_cfg(name="imagefolder", root=str(root), val_fraction=0.2))
    assert s.classes == ["cat", "dog"] and len(s.test) == 8 and len(s.train) + len(s.val) == 20
    assert s.shape.channels == 3 and s.shape.height == 6
    dog = s.train.x[s.train.y == 1]
    assert (dog == 200).all()
    archive = tmp_path / "imgs.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname=".")
    t = load_splits(dataset_cfg(name="imagefolder", root=str(archive), val_fraction=0.2))
    assert torch.equal(t.test.x, s.test.x) and torch.equal(t.train.y, s.train.y)
    cached = list((Path(os.environ["NASCLI_CACHE"]) / "imagefolder").glob("imgs.tar.gz-*.pt"))
    assert len(cached) == 1
    again = load_splits(dataset_cfg(name="imagefolder", root=str(archive), val_fraction=0.2))
    assert torch.equal(again.train.x, t.train.x)


def test_missing_imagefolder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_splits(dataset_cfg(name="imagefolder", root=str(tmp_path / "nope")))


@needs_shared
def test_fashion_mnist_from_shared_copy():
    s = load_splits(dataset_cfg(name="fashion_mnist", root=str(SHARED / "datasets"), download=True, val_fraction=0.1))
    assert s.sizes() == {"train": 54000, "val": 6000, "test": 10000}
    assert s.shape == s.shape.__class__(1, 28, 28, 10)
    assert s.classes[0] == "T-shirt/top"


@needs_shared
def test_cifar10_jpeg_copy_reads_as_imagefolder():
    archive = SHARED / "datasets" / "cifar10-jpeg.tar.gz"
    s = load_splits(dataset_cfg(name="imagefolder", root=str(archive), val_fraction=0.1))
    assert s.sizes() == {"train": 45000, "val": 5000, "test": 10000}
    assert s.classes == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    assert s.shape.channels == 3 and s.shape.height == 32
    assert 0.45 < s.mean[0] < 0.53  # CIFAR-10's red-channel mean is 0.491
