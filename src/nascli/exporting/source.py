"""What `nas export ARCH` exports: the architecture, a network with trained or fresh weights, and the data it takes.

    a retrain run directory      its checkpoints/best.pt (the best epoch by val accuracy); `latest`: the newest
    a retrain checkpoint         best.pt or last.pt: weights, architecture and the whole training config
    anything else `nas retrain` accepts (arch.json, search run, preset, NB201 arch string)
                                 the architecture alone: weights only with --init (freshly initialised, seeded)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from torch import nn

from nascli.arch import Arch
from nascli.config import compose, inherited_overrides
from nascli.data import load_splits
from nascli.datashape import DataShape
from nascli.device import seed_everything
from nascli.errors import UserError
from nascli.rundir import CHECKPOINT_SUFFIXES, RunDir, load_checkpoint
from nascli.spaces.base import get_space


@dataclass
class ExportSource:
    arch: Arch
    model: nn.Module | None  # eval mode, CPU, float32; None when no weights were asked for
    net: dict  # the size node the network is built with (channels, layers, ...)
    input: dict  # Splits.input_record: shape, mean / std, class names
    origin: dict  # where the architecture and weights came from, and the accuracy they reached

    @property
    def shape(self) -> DataShape:
        i = self.input
        return DataShape(int(i["channels"]), int(i["height"]), int(i["width"]), int(i["num_classes"]))


def export_source(ref: str, overrides: list[str], *, weights: bool, init: bool, run_root: Path,
                  config_dir: Path | None = None) -> ExportSource:
    """Resolve REF (module docstring); `weights`: the format needs a network (every format but genotype)."""
    from nascli.arch_io import resolve_arch, resolve_ref_path

    if ref == "latest" and not Path(ref).exists():  # what has weights to export: the newest finished retrain
        ref = str(RunDir.latest(run_root, "retrain").path)
    checkpoint = _checkpoint_of(ref)
    if checkpoint is not None:
        if init:
            raise UserError(f"{ref} holds trained weights; drop --init to export them, or pass its arch.json "
                            "with --init for fresh ones")
        if overrides:
            raise UserError(f"a retrain checkpoint carries its own config; drop {' '.join(overrides)}")
        source = _from_checkpoint(checkpoint)
        if not weights:  # the genotype alone; the checkpoint still says what accuracy it reached
            source.model, source.origin["weights"] = None, None
        return source
    ref = resolve_ref_path(ref, run_root)
    arch = resolve_arch(ref)
    if weights and not init:
        raise UserError(f"{ref} is an architecture without trained weights (no retrain checkpoint); pass --init "
                        f"for freshly initialised weights, or train it first with `nas retrain {ref}` and export "
                        "that retrain run")
    inherited, source_run = inherited_overrides(ref, overrides, ("dataset",))
    has_space = any(o.split("=", 1)[0].lstrip("+~") == "space" for o in overrides)
    cfg = compose("retrain", ([] if has_space else [f"space={arch.space}"]) + inherited + overrides, config_dir)
    if cfg.space.name != arch.space:
        raise UserError(f"the architecture is from space '{arch.space}' but space={cfg.space.name} was given; "
                        f"drop the space override or use space={arch.space}")
    splits = load_splits(cfg.dataset)
    record = splits.input_record(cfg.dataset.resize)
    net = OmegaConf.to_container(cfg.space.retrain, resolve=True)
    model = None
    if weights:
        seed_everything(int(cfg.seed))  # --init weights are the seed's, as `nas retrain` would start from
        model = get_space(arch.space, cfg.space).build(arch, splits.shape, cfg.space.retrain).eval()
    origin = {"ref": ref, "run": source_run, "checkpoint": None, "weights": "initialised" if weights else None,
              "seed": int(cfg.seed) if weights else None, "accuracy": None}
    return ExportSource(arch, model, net, record, origin)


def _checkpoint_of(ref: str) -> Path | None:
    """The checkpoint REF names: itself, or a retrain run's best.pt; None for anything that is not a retrain."""
    path = Path(ref).expanduser()
    if path.is_file() and path.suffix in CHECKPOINT_SUFFIXES:
        return path
    if path.is_dir() and RunDir.kind_of(path) == "retrain":
        run = RunDir.open(path, "retrain")
        run.require_finished()
        best = run.checkpoint(RunDir.BEST_CKPT)
        if not best.is_file():
            raise UserError(f"{path} has no checkpoints/{RunDir.BEST_CKPT}; pass one of its checkpoints")
        return best
    return None


def _from_checkpoint(path: Path) -> ExportSource:
    from nascli.arch_io import arch_from_json

    blob = load_checkpoint(path)
    if blob.get("kind") != "retrain" or "model" not in blob or "arch" not in blob:
        raise UserError(f"{path} is a {blob.get('kind', 'unknown')} checkpoint without a trained network; pass a "
                        "retrain checkpoint (best.pt, last.pt) or a retrain run directory")
    arch = arch_from_json(blob["arch"], f"{path} (arch)")
    cfg: DictConfig = OmegaConf.create(blob["config"])
    if "input" in blob:
        record = blob["input"]
    else:  # checkpoints written before they carried it: the split statistics are recomputed the same way
        record = load_splits(cfg.dataset).input_record(cfg.dataset.get("resize"))
    space = get_space(arch.space, cfg.space)
    shape = DataShape(int(record["channels"]), int(record["height"]), int(record["width"]),
                      int(record["num_classes"]))
    model = space.build(arch, shape, cfg.space.retrain)
    # The auxiliary head only trains; inference never runs it.
    state = {k: v for k, v in blob["model"].items() if not k.startswith("auxiliary.")}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise UserError(f"{path}'s weights do not fit its architecture ({str(e).splitlines()[0][:120]}); the "
                        "checkpoint is damaged") from None
    run_dir = path.parent.parent
    origin = {"ref": str(path), "run": str(run_dir) if (run_dir / RunDir.MANIFEST).is_file() else None,
              "checkpoint": str(path), "weights": "trained", "seed": int(cfg.seed),
              "accuracy": _accuracy(run_dir, path, blob)}
    return ExportSource(arch, model.eval(), OmegaConf.to_container(cfg.space.retrain, resolve=True), record, origin)


def _accuracy(run_dir: Path, path: Path, blob: dict) -> dict:
    """The accuracy the exported weights reached: the checkpoint's epoch record (val), and the retrain's test
    accuracy for these weights when the run finished (best.pt: at the best val epoch; last.pt: at the end)."""
    metrics = blob.get("metrics", {})
    out = {"epoch": blob.get("epoch"), "val_acc": metrics.get("val_acc"), "test_acc": None,
           "dataset": blob["config"].get("dataset", {}).get("name")}
    result_path = run_dir / RunDir.RESULT
    if result_path.is_file():
        result = json.loads(result_path.read_text())
        if path.name == RunDir.BEST_CKPT and result.get("best_epoch") == blob.get("epoch"):
            out["test_acc"] = result.get("test_acc_at_best_val")
        elif path.name == RunDir.LAST_CKPT and result.get("epochs") == blob.get("epoch"):
            out["test_acc"] = result.get("test_acc")
    return out
