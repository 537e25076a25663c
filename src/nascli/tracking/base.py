"""The tracker interface and its registry.

A tracker observes one run directory: `start` when the run begins, `record` for every metrics.jsonl line, and
`close` once the run has ended (status, summary and results are written by then). The run directory stays the
source of truth; a tracker only mirrors it, so a tracker that fails warns and never fails the run.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from omegaconf import DictConfig, OmegaConf

from nascli.registry import load_plugins, lookup, registrar

TRACKERS: dict[str, type[Tracker]] = {}
register_tracker = registrar(TRACKERS)

BUILTIN_TRACKER_MODULES = ("nascli.tracking.none", "nascli.tracking.tensorboard", "nascli.tracking.mlflow_tracker")
# Keys of a metrics record that say when, not what.
STEP_KEYS = ("epoch", "evaluation", "index", "level", "step")
NOT_METRICS = {"time", "event", *STEP_KEYS}


class Tracker(ABC):
    Config: ClassVar[type]  # dataclass schema of this tracker's config group
    engine: ClassVar[tuple[str, str] | None] = None  # (module, pip extra) of an optional dependency

    def __init__(self, cfg):
        self.cfg = cfg
        self._steps: dict[str, int] = {}

    @abstractmethod
    def start(self, run, cfg: DictConfig) -> None:
        """The run began: its config is known."""

    @abstractmethod
    def scalars(self, event: str, values: dict[str, float], step: int) -> None:
        """Numeric values of one metrics record."""

    @abstractmethod
    def close(self, run) -> None:
        """The run ended: final metrics, images, artifacts."""

    def record(self, record: dict[str, Any]) -> None:
        event = str(record.get("event", "record"))
        flat = {}
        for k, v in record.items():
            if isinstance(v, dict):  # one level of named numbers, e.g. mean_entropy per cell type
                flat.update({f"{k}.{kk}": vv for kk, vv in v.items()})
            else:
                flat[k] = v
        values = {k: float(v) for k, v in flat.items()
                  if k not in NOT_METRICS and isinstance(v, (int, float)) and not isinstance(v, bool)
                  and math.isfinite(float(v))}
        if not values:
            return
        step = next((int(record[k]) for k in STEP_KEYS if isinstance(record.get(k), (int, float))), None)
        if step is None:  # records without a position get one per event kind
            step = self._steps.get(event, 0)
            self._steps[event] = step + 1
        self.scalars(event, values, step)


def load_tracker_plugins() -> None:
    load_plugins("nascli.trackers", BUILTIN_TRACKER_MODULES)


def tracker_class(name: str) -> type[Tracker]:
    load_tracker_plugins()
    return lookup(TRACKERS, name, "tracker (tracking=)")


def check_tracker(cfg: DictConfig) -> None:
    """Before any work: the tracker exists and its optional package is installed (else one line naming pip)."""
    from nascli.registry import require

    node = cfg.get("tracking")
    if node is None or node.name == "none":
        return
    cls = tracker_class(node.name)
    if cls.engine is not None:
        require(cls.engine[0], cls.engine[1], node.name, what="tracking")


def attach_tracker(run, cfg: DictConfig) -> None:
    """Observe `run` with the tracker `cfg.tracking` names (none: nothing)."""
    node = cfg.get("tracking")
    if node is None or node.name == "none":
        return
    tracker = tracker_class(node.name)(node)
    tracker.start(run, cfg)
    run.observers.append(tracker)


def flat_params(cfg: DictConfig) -> dict[str, str]:
    """The config as dotted key -> value strings (what trackers' hyperparameter views show)."""
    out = {}

    def walk(prefix: str, node) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[prefix] = str(node)

    walk("", OmegaConf.to_container(cfg, resolve=True))
    return out


def final_metrics(run) -> dict[str, float]:
    """The numbers a run ends with: a search's best score (and truth), a retrain's accuracies."""
    import json

    out = {}
    summary = run.manifest.get("summary") or {}
    if isinstance(summary.get("best_score"), (int, float)):
        out["final/best_score"] = float(summary["best_score"])
    for name, value in (summary.get("best_truth") or {}).items():
        out[f"final/best_truth_{name}"] = float(value)
    result = run.path / "result.json"
    if result.exists():
        doc = json.loads(result.read_text())
        for key in ("test_acc", "val_acc", "best_val_acc", "params", "flops"):
            if isinstance(doc.get(key), (int, float)):
                out[f"final/{key}"] = float(doc[key])
    return out
