"""Datasets as in-memory uint8 tensors split into train / val / test.

Val is held out from train by a seeded stratified split; test is only ever read by
`nas retrain` (search strategies rank on val).
"""

from nascli.data.loader import Augment, TensorLoader
from nascli.data.splits import DATASETS, DatasetConfig, Split, Splits, load_splits, register_dataset

__all__ = [
    "DATASETS", "Augment", "DatasetConfig", "Split", "Splits", "TensorLoader", "load_splits", "register_dataset",
]
