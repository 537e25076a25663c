"""Seeded, class-mixed draws from a split: the few batches a score or a BN calibration reads, and a fixed
random order for evaluations whose result depends on which images share a batch.

Splits are stored class-sorted: stratified picks come back in index order and image folders are read one
class folder after another, so "the first batch" of a split is often a single class (on CIFAR-10 JPEG with
`dataset.subset=10000` the first 128 training images are all airplanes). Anything that reads a few batches
must draw them instead, and anything that evaluates with batch statistics must not see sorted batches: BN's
statistics then carry the labels of the images sharing a batch.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from nascli.data.splits import Split


def class_mixed_batches(labels: torch.Tensor | np.ndarray, batch_size: int, count: int,
                        seed: int) -> list[np.ndarray]:
    """`count` disjoint batches of indices into `labels`, each a stratified draw without replacement (class
    proportions kept, so every class appears once a batch holds at least one image per class), in a seeded
    random order within the batch. The same (labels, batch_size, count, seed) give the same indices."""
    y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if batch_size < 1 or count < 1:
        raise ValueError("batch_size and count must be positive")
    rng = np.random.default_rng(int(seed))
    pool = np.arange(len(y))
    batches = []
    for _ in range(int(count)):
        if len(pool) <= batch_size:
            picked, pool = pool, pool[:0]
        else:
            classes, counts = np.unique(y[pool], return_counts=True)
            # sklearn stratifies only where both sides can hold every class at least once.
            can_stratify = counts.min() >= 2 and min(batch_size, len(pool) - batch_size) >= len(classes)
            picked, pool = train_test_split(pool, train_size=int(batch_size), random_state=int(rng.integers(2**31)),
                                            stratify=y[pool] if can_stratify else None)
        batches.append(rng.permutation(np.sort(picked)))
        if not len(pool):
            break
    return batches


def shuffled(split: Split, seed: int) -> Split:
    """The split in one fixed random order (seeded): batch-statistic evaluations then see class-mixed batches,
    and the same batches every time."""
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(int(seed))).to(split.x.device)
    return Split(split.x[order], split.y[order])


def subset(split: Split, indices: np.ndarray) -> Split:
    index = torch.as_tensor(np.asarray(indices, dtype=np.int64), device=split.x.device)
    return Split(split.x[index], split.y[index])
