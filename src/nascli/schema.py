"""Dataclass schemas for the config groups that are not plugins.

Plugins (strategies, spaces) carry their own schema as `Config` on the class, so a
third-party plugin's keys are validated exactly like the built-ins'.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nascli.data.splits import DatasetConfig
from nascli.device import DeviceConfig
from nascli.train import TrainConfig


@dataclass
class BudgetConfig:
    name: str = "cpu"
    epochs: int = 30  # retrain epochs
    search_epochs: int = 10  # supernet / hypernet training epochs
    candidates: int = 16  # architectures a strategy samples, trains or scores
    candidate_epochs: int = 3  # short training of one candidate (random, pnas)
    batch_size: int = 64
    max_batches: int | None = None  # cap on training batches per epoch (smoke runs)
    warmup_epochs: int = 2  # supernet epochs on the softmax(alpha) mixture before sampling (snas)
    search_batch_size: int = 32  # batch of a supernet / HyperNet step (snas, smash)
    hypernet_epochs: int = 70  # HyperNet training epochs (smash)
    scored_candidates: int = 250  # architectures a trained one-shot model scores and ranks (smash)
    levels: int = 3  # blocks (pnas B) a progressive search grows cells to
    beam: int = 8  # cells kept and evaluated per level after the first (pnas K)
    max_evaluations: int | None = None  # cap on candidates evaluated one by one (pnas)
    rounds: int = 0  # pnas: rounds of K expansions after level B


@dataclass
class CheckpointConfig:
    every_s: float = 60.0  # seconds between resume checkpoints (also one per epoch / evaluated candidate)


@dataclass
class BenchmarkConfig:
    table: str | None = None  # CSV with an arch_str column and accuracy columns (NB201)
    metric: str = "cifar10_test_200ep"  # the column reported as the found cell's true accuracy
    # the column a table-evaluated search optimises; null: the table's validation column (NB201's protocol)
    fitness: str | None = None


@dataclass
class SearchConfig:
    command: str = "search"
    seed: int = 0
    strategy: Any = None
    space: Any = None
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)  # how strategies train candidates
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    executor: Any = None  # where independent candidates train (random search, pnas children)
    tracking: Any = None  # experiment tracker (none | tensorboard | mlflow)
    latency: LatencyConfig = field(default_factory=lambda: LatencyConfig(method="table"))  # results' latency column
    top: int = 10  # rows in the final table


@dataclass
class LatencyConfig:
    batch: int = 1  # images per timed forward
    repeats: int = 20  # timed forwards; the median is reported
    warmup: int = 3  # untimed forwards first
    throughput_batch: int = 64  # nas retrain: images per forward for throughput_img_s
    method: str = "measured"  # measured: time each network | table: per-op lookup table sum | none (search only)


@dataclass
class RetrainConfig:
    command: str = "retrain"
    seed: int = 0
    space: Any = None
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    checkpoint_every: int = 1  # epochs between last.pt saves
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    executor: Any = None  # where the retrains of a batch (--top / --sample) run
    tracking: Any = None  # experiment tracker (none | tensorboard | mlflow)
    latency: LatencyConfig = field(default_factory=LatencyConfig)  # timing of the trained network (latency.json)


@dataclass
class ProxyDataConfig:
    batch_seed: int = 0  # which seeded, class-mixed draw of training images the data-dependent proxies score on


@dataclass
class OwnScoreConfig:
    val_images: int | None = 500  # val images every cell is evaluated on (the first of the run's fixed order)
    scrambled: bool = False  # SMASH: also score with scrambled conditioning (column strategy_smash_scrambled)


@dataclass
class RankConfig:
    command: str = "rank"
    seed: int = 0  # network initialisation and --sample draws
    proxy: str | None = None  # proxies, comma separated (synflow,naswot,params); null: the search run's strategy
    rank_mean: str | None = None  # members of the rank_mean proxy, comma separated; null: the other proxies asked for
    vote: str | None = None  # members of the vote proxy (an odd number), comma separated; null: synflow,jacob_cov,snip
    batches: int = 1  # data batches a data-dependent proxy averages over
    batch_size: int | None = None  # images per batch; null: each proxy's paper batch (naswot 128, others 64)
    proxies: ProxyDataConfig = field(default_factory=ProxyDataConfig)
    chunk: int = 16  # architectures per task; results are written after every chunk
    own: OwnScoreConfig = field(default_factory=OwnScoreConfig)  # scoring with a search run's own estimator
    executor: Any = None
    network: str = "retrain"  # which network size a proxy sees: retrain (what gets trained) | search
    top: int = 10  # rows in the printed table
    latency: LatencyConfig = field(default_factory=LatencyConfig)  # the latency proxy's timing
    objective: Any = None  # score (the first score column) | mnas (MnasNet's reward with the latency column)
    space: Any = None
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)


@dataclass
class CorrelateConfig:
    command: str = "correlate"
    seed: int = 0  # bootstrap resampling
    proxy: str | None = None  # proxy column(s), comma separated; null: every proxy column of the input
    rank_mean: str | None = None  # columns a requested rank_mean combines (when the run has no rank_mean column)
    vote: str | None = None  # columns a requested vote combines; null: synflow,jacob_cov,snip
    truth: str | None = None  # truth column; null: test_acc of retrain runs, or the benchmark column of a rank run
    lower_is_better: list[str] = field(default_factory=list)  # extra columns to negate (registered proxies know)
    top_k: int = 10  # precision@K and top-K overlap
    collapse: bool = True  # average architectures that compute the same function
    bootstrap: int = 2000  # resamples for the confidence intervals
    confidence: float = 0.95
    given: str | None = None  # a column (e.g. params) to hold fixed: Kendall's partial τ of each proxy given it
    versus: str | None = None  # a proxy column to compare the others with: τ difference, paired bootstrap interval
    mixed: str = "refuse"  # retrains trained with different settings: refuse (name the keys) | ok (average them)
    bootstrap_unit: str = "group"  # collapse=false: resample functional groups (group) or single cells (row)


# Numeric keys with a valid range: (low, high, what the key is). Bounds are inclusive except where the
# description says "in (0, 1)". A null value (where the schema allows one) means "not set" and passes.
POSITIVE = (1, None)
RANGES: dict[str, tuple[float | None, float | None]] = {
    **{f"budget.{k}": POSITIVE for k in ("epochs", "search_epochs", "candidates", "candidate_epochs", "batch_size",
                                         "max_batches", "search_batch_size", "hypernet_epochs", "scored_candidates",
                                         "levels", "beam", "max_evaluations")},
    "budget.rounds": (0, None),
    "budget.warmup_epochs": (0, None),
    "dataset.subset": POSITIVE, "dataset.test_subset": POSITIVE, "dataset.resize": POSITIVE,
    "dataset.crop_padding": (0, None),
    "device.threads": POSITIVE,
    "train.lr": (0, None), "train.weight_decay": (0, None), "train.grad_clip": (0, None), "train.cutout": (0, None),
    "train.momentum": (0, 1), "train.label_smoothing": (0, 1), "train.drop_path": (0, 1),
    "checkpoint.every_s": (0, None), "checkpoint_every": POSITIVE,
    "top": POSITIVE, "chunk": POSITIVE, "batches": POSITIVE, "batch_size": POSITIVE, "top_k": POSITIVE,
    "bootstrap": (0, None),  # 0: no confidence intervals
    "latency.batch": POSITIVE, "latency.repeats": POSITIVE, "latency.warmup": (0, None),
    "latency.throughput_batch": POSITIVE,
}
# Fractions that must lie strictly between 0 and 1.
OPEN_UNIT = ("dataset.val_fraction", "dataset.test_fraction", "confidence")


SCHEMAS: dict[str, type] = {"search": SearchConfig, "retrain": RetrainConfig, "rank": RankConfig,
                            "correlate": CorrelateConfig}
