"""Dataset loaders: each returns uint8 tensors (N x C x H x W) and int64 labels."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path

import numpy as np
import torch

from nascli.atomic import write_torch
from nascli.data.splits import DatasetConfig, RawData, expand, register_dataset
from nascli.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


@register_dataset("digits")
def load_digits(cfg: DatasetConfig) -> RawData:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes, offline)."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    # Pixel values are 0..16; scale to the 0..255 range every other dataset uses.
    x = torch.from_numpy(np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)).unsqueeze(1)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    return RawData(x, y, classes=[str(c) for c in bunch.target_names])


def _writable_root(cfg: DatasetConfig, folder: str) -> Path:
    """torchvision extracts next to the archives it finds; copy read-only ones to the cache first."""
    root = expand(cfg.root)
    raw = root / folder / "raw"
    if raw.is_dir() and not os.access(raw, os.W_OK):
        cached = expand(cfg.cache_dir) / "torchvision" / folder / "raw"
        if not cached.is_dir() or len(list(cached.iterdir())) < len(list(raw.iterdir())):
            cached.mkdir(parents=True, exist_ok=True)
            for f in raw.iterdir():
                if f.is_file() and not (cached / f.name).exists():
                    shutil.copy2(f, cached / f.name)
        return cached.parent.parent
    return root


def _torchvision(cfg: DatasetConfig, make, folder: str | None = None) -> RawData:
    root = _writable_root(cfg, folder) if folder else expand(cfg.root)
    try:
        train, test = make(str(root), True, bool(cfg.download)), make(str(root), False, bool(cfg.download))
    except (RuntimeError, OSError) as e:
        raise UserError(_missing_data_message(cfg, root, e)) from None
    return RawData(*_tensors(train), *_tensors(test), classes=[str(c) for c in getattr(train, "classes", [])]
                   or [str(i) for i in range(int(_tensors(train)[1].max()) + 1)])


def _missing_data_message(cfg: DatasetConfig, root: Path, error: Exception) -> str:
    """Say what failed (not found, or the download), where it looked, and how to point at a local copy."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    cause = error.__cause__ or error.__context__
    reason = text.rstrip(":") + (f": {cause}" if cause and str(cause) not in text else "")
    if not cfg.download:
        return (f"{cfg.name} is not under {root} and dataset.download=false; set dataset.root=DIR to a folder "
                f"that holds it, or dataset.download=true")
    if "Error downloading" in text or isinstance(error, OSError) or cause is not None:
        return (f"could not download {cfg.name} (no network? {reason or type(error).__name__}) and found no copy "
                f"under {root}; set dataset.root=DIR to a folder holding the original files "
                f"(e.g. dataset.root=../shared/datasets for Fashion-MNIST)")
    return f"{cfg.name} could not be read from {root} ({reason}); set dataset.root=DIR to a complete local copy"


def _tensors(ds) -> tuple[torch.Tensor, torch.Tensor]:
    data = ds.data
    data = data if isinstance(data, torch.Tensor) else torch.from_numpy(np.asarray(data))
    if data.ndim == 3:  # MNIST family: N x H x W
        data = data.unsqueeze(1)
    elif data.shape[-1] == 3 and data.shape[1] != 3:  # CIFAR: N x H x W x C
        data = data.permute(0, 3, 1, 2)
    labels = getattr(ds, "targets", None)
    if labels is None:
        labels = ds.labels  # SVHN, STL10
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    return data.to(torch.uint8).contiguous(), labels


def _mnist_like(cls_name: str, folder: str):
    def load(cfg: DatasetConfig) -> RawData:
        import torchvision

        cls = getattr(torchvision.datasets, cls_name)
        return _torchvision(cfg, lambda root, train, dl: cls(root, train=train, download=dl), folder)

    load.__doc__ = f"torchvision's {cls_name}, downloaded to dataset.root unless the original files are there."
    return load


register_dataset("mnist")(_mnist_like("MNIST", "MNIST"))
register_dataset("fashion_mnist")(_mnist_like("FashionMNIST", "FashionMNIST"))


@register_dataset("cifar10")
def load_cifar10(cfg: DatasetConfig) -> RawData:
    """torchvision's CIFAR10, downloaded to dataset.root unless the original files are there."""
    import torchvision

    return _torchvision(cfg, lambda root, train, dl: torchvision.datasets.CIFAR10(root, train=train, download=dl))


@register_dataset("cifar100")
def load_cifar100(cfg: DatasetConfig) -> RawData:
    """torchvision's CIFAR100, downloaded to dataset.root unless the original files are there."""
    import torchvision

    return _torchvision(cfg, lambda root, train, dl: torchvision.datasets.CIFAR100(root, train=train, download=dl))


@register_dataset("svhn")
def load_svhn(cfg: DatasetConfig) -> RawData:
    """torchvision's SVHN, downloaded to dataset.root unless the original files are there."""
    import torchvision

    split = {True: "train", False: "test"}
    return _torchvision(cfg, lambda root, train, dl: torchvision.datasets.SVHN(root, split=split[train], download=dl))


@register_dataset("stl10")
def load_stl10(cfg: DatasetConfig) -> RawData:
    """torchvision's STL10, downloaded to dataset.root unless the original files are there."""
    import torchvision

    split = {True: "train", False: "test"}
    return _torchvision(cfg, lambda root, train, dl: torchvision.datasets.STL10(root, split=split[train], download=dl))


# -- image folders -----------------------------------------------------------------------


@register_dataset("imagefolder")
def load_imagefolder(cfg: DatasetConfig) -> RawData:
    """A folder (or .tar/.tar.gz) of `<class>/<image>` or `train|test/<class>/<image>`.

    Images are decoded once and cached as a tensor file keyed by the source's path,
    size and modification time, so later runs start in a second.
    """
    src = expand(cfg.root)
    if not src.exists():
        raise UserError(f"image folder {src} does not exist; set dataset.root=PATH to a folder or .tar.gz")
    stat = src.stat()
    key = hashlib.sha1(f"{src.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    cache = expand(cfg.cache_dir) / "imagefolder" / f"{src.name}-{key}.pt"
    if cache.is_file():
        try:
            blob = torch.load(cache, map_location="cpu", weights_only=True)
            return RawData(blob["x"], blob["y"], blob.get("x_test"), blob.get("y_test"), blob["classes"])
        except Exception:  # a corrupt cache is rebuilt, never trusted
            cache.unlink(missing_ok=True)
    entries = _tar_entries(src) if src.is_file() else _dir_entries(src)
    raw = _decode(entries, src)
    write_torch(cache, {"x": raw.x, "y": raw.y, "x_test": raw.x_test, "y_test": raw.y_test, "classes": raw.classes})
    return raw


def _dir_entries(root: Path):
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            yield path.relative_to(root).parts, path.read_bytes()


def _tar_entries(archive: Path):
    try:
        with tarfile.open(archive) as tar:
            for member in tar:
                if member.isfile() and Path(member.name).suffix.lower() in IMAGE_SUFFIXES:
                    yield Path(member.name).parts, tar.extractfile(member).read()
    except tarfile.TarError as e:
        raise UserError(f"cannot read archive {archive}: {e}; pass a folder or a valid .tar/.tar.gz") from None


def _decode(entries, src: Path) -> RawData:
    from PIL import Image

    from nascli.progress import progress_bar

    items: dict[str, list[tuple[str, tuple[str, ...], bytes]]] = {"train": [], "test": [], "": []}
    for parts, data in entries:
        parts = tuple(p for p in parts if p not in (".", ""))
        if len(parts) >= 3 and parts[-3] in ("train", "test"):
            items[parts[-3]].append((parts[-2], parts, data))
        elif len(parts) >= 2:
            items[""].append((parts[-2], parts, data))
    split_mode = bool(items["train"])
    groups = {"train": items["train"], "test": items["test"]} if split_mode else {"train": items[""]}
    if not groups["train"]:
        raise UserError(f"no images found in {src}; expected <class>/<image> or train/<class>/<image>")
    classes = sorted({cls for group in groups.values() for cls, _, _ in group})
    index = {c: i for i, c in enumerate(classes)}
    out = {}
    total = sum(len(g) for g in groups.values())
    with progress_bar(f"decoding {src.name}", total) as advance:
        for name, group in groups.items():
            if not group:
                continue
            group.sort(key=lambda item: item[1])  # archive order is arbitrary; paths are not
            images, labels = [], []
            mode = None
            for cls, _, data in group:
                img = Image.open(io.BytesIO(data))
                mode = mode or ("L" if img.mode in ("L", "I", "I;16", "1") else "RGB")
                images.append(np.asarray(img.convert(mode)))
                labels.append(index[cls])
                advance(1)
            sizes = {im.shape[:2] for im in images}
            if len(sizes) > 1:
                raise UserError(f"images in {src} have different sizes {sorted(sizes)[:3]}...; "
                                "resize them to one size first")
            arr = np.stack(images)
            arr = arr[:, None] if arr.ndim == 3 else arr.transpose(0, 3, 1, 2)
            out[name] = (torch.from_numpy(np.ascontiguousarray(arr)), torch.tensor(labels, dtype=torch.int64))
    x, y = out["train"]
    x_test, y_test = out.get("test", (None, None))
    return RawData(x, y, x_test, y_test, classes)
