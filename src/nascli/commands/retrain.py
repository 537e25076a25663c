"""`nas retrain ARCH`: train one architecture from scratch; report val and test accuracy."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from nascli.arch import Arch
from nascli.archfile import CHECKPOINT_FORMAT
from nascli.data import load_splits
from nascli.device import resolve, seed_everything
from nascli.errors import UserError
from nascli.measure import cost
from nascli.report import curves_figure
from nascli.rundir import RunDir
from nascli.spaces.base import get_space
from nascli.train import evaluate, fit, make_loader


def batch_source(ref: str, run_root: Path) -> RunDir:
    """The search or rank run whose architectures `--top` / `--sample` retrain (`latest`: newest search run)."""
    run = RunDir.latest(run_root, "search") if ref == "latest" and not Path(ref).exists() else RunDir.open(ref)
    if run.manifest.get("kind") not in ("search", "rank"):
        raise UserError(f"{run.path} is a {run.manifest.get('kind')} run; --top/--sample take a search or rank run")
    return run


def inherited_overrides(ref: str, overrides: list[str], groups: tuple[str, ...] = ("dataset",)
                        ) -> tuple[list[str], str | None]:
    """Overrides that reuse a run's config groups (by default its dataset).

    A user who searched on Fashion-MNIST expects `nas retrain <run>/arch.json` to train on
    Fashion-MNIST too. An explicit `dataset=` on the command line wins; `dataset.key=`
    overrides still apply on top. The same holds for every group in `groups`.
    """
    path = Path(ref).expanduser()
    run_dir = path if path.is_dir() else path.parent
    if path.suffix in CHECKPOINT_SUFFIXES:
        run_dir = path.parent.parent
    if not (run_dir / "config.yaml").is_file() or not (run_dir / "manifest.json").is_file():
        return [], None
    try:
        run_cfg = OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"))
    except Exception:
        return [], None
    inherited = []
    for group in groups:
        node = run_cfg.get(group)
        if any(o.split("=", 1)[0].lstrip("+~") == group for o in overrides):
            continue
        if node is not None and not isinstance(node, dict):  # a top-level value such as the seed
            inherited.append(f"{group}={hydra_value(node)}")
            continue
        if not isinstance(node, dict):
            continue
        if "name" in node:  # a config group (dataset=NAME); plain sections (train) carry keys only
            inherited.append(f"{group}={node['name']}")
        inherited += [f"{key}={hydra_value(v)}" for key, v in _flat(node, group) if key != f"{group}.name"]
    return inherited, str(run_dir)


CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")


def inherited_groups(ref: str) -> tuple[str, ...]:
    """What `nas retrain REF` takes from the run REF belongs to: a retrain checkpoint carries its whole
    training setup (space sizes, dataset, budget, optimiser); an architecture from a search run only
    its dataset."""
    path = Path(ref).expanduser()
    if path.suffix in CHECKPOINT_SUFFIXES and (path.parent.parent / "manifest.json").is_file():
        try:
            kind = json.loads((path.parent.parent / "manifest.json").read_text()).get("kind")
        except (json.JSONDecodeError, OSError, UnicodeDecodeError):
            kind = None
        if kind == "retrain":
            return ("space", "dataset", "budget", "train", "seed")
    return ("dataset",)


def source_kind(run_dir: str) -> str:
    try:
        return json.loads((Path(run_dir) / "manifest.json").read_text()).get("kind") or "source"
    except (json.JSONDecodeError, OSError, UnicodeDecodeError):
        return "source"


def _flat(node: dict, prefix: str):
    """(dotted key, leaf value) pairs of a nested config node."""
    for k, v in node.items():
        if isinstance(v, dict):
            yield from _flat(v, f"{prefix}.{k}")
        else:
            yield f"{prefix}.{k}", v


def hydra_value(v) -> str:
    """A Python value written in Hydra's override grammar."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(hydra_value(x) for x in v) + "]"
    text = str(v).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


@dataclass
class RetrainOutcome:
    run: RunDir
    result: dict
    history: list[dict]


def run_retrain(arch: Arch, cfg: DictConfig, *, run_root: Path, argv: list[str], overrides: list[str],
                source: dict | None = None) -> RetrainOutcome:
    if cfg.space.name != arch.space:
        raise UserError(f"the architecture is from space '{arch.space}' but space={cfg.space.name} was given; "
                        f"drop the space override or use space={arch.space}")
    space = get_space(arch.space, cfg.space)
    runtime = resolve(cfg.device)
    generator = seed_everything(int(cfg.seed))
    splits = load_splits(cfg.dataset).to(runtime.device)
    train_cfg = cfg.train
    model = space.build(arch, splits.shape, cfg.space.retrain, auxiliary=train_cfg.auxiliary_weight > 0)
    costs = cost(model, splits.shape)
    model = runtime.prepare(model)
    run = RunDir.create(run_root, "retrain", arch.arch_id, cfg, argv=argv, overrides=overrides,
                        device=runtime.describe(),
                        extra={"arch_id": arch.arch_id, "space": arch.space, "dataset": cfg.dataset.name,
                               "data": splits.sizes(), "source_run": (source or {}).get("run"), **costs})
    epochs = int(cfg.budget.epochs)
    with run.running():
        run.write_json("arch.json", arch.to_json(source=source, description=space.describe(arch)))
        best = {"val_acc": float("-inf"), "epoch": 0}
        config = OmegaConf.to_container(cfg)

        def checkpoint(record, model, opt, sched) -> dict:
            return {"format": CHECKPOINT_FORMAT, "kind": "retrain", "epoch": record["epoch"],
                    "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "metrics": record, "config": config, "arch": arch.to_json()}

        def on_epoch(record, model, opt, sched):
            run.log(event="epoch", **record)
            is_last = record["epoch"] == epochs
            if record["val_acc"] > best["val_acc"]:
                best.update(val_acc=record["val_acc"], epoch=record["epoch"])
                run.save_checkpoint("best.pt", checkpoint(record, model, opt, sched))
            if is_last or record["epoch"] % max(int(cfg.checkpoint_every), 1) == 0:
                run.save_checkpoint("last.pt", checkpoint(record, model, opt, sched))

        started = time.perf_counter()
        history = fit(model, splits, train_cfg, epochs=epochs, batch_size=int(cfg.budget.batch_size),
                      runtime=runtime, generator=generator, max_batches=cfg.budget.max_batches,
                      dataset_cfg=cfg.dataset, on_epoch=on_epoch, description=f"retrain {arch.arch_id}")
        train_seconds = time.perf_counter() - started
        test_loader = make_loader(splits.test, splits, 256, runtime, train=False)
        final_test = evaluate(model, test_loader, runtime)
        best_state = torch.load(run.path / "checkpoints" / "best.pt", map_location=runtime.device, weights_only=True)
        model.load_state_dict(best_state["model"])
        best_test = evaluate(model, test_loader, runtime)
        last = history[-1]
        result = {
            "arch_id": arch.arch_id, "space": arch.space, "dataset": cfg.dataset.name, "seed": int(cfg.seed),
            "epochs": epochs, "val_acc": last["val_acc"], "test_acc": final_test["acc"],
            "test_loss": final_test["loss"], "val_held_out": not bool(train_cfg.include_val),
            "best_epoch": best["epoch"], "best_val_acc": best["val_acc"], "test_acc_at_best_val": best_test["acc"],
            **costs, "train_seconds": round(train_seconds, 2), "wall_time_s": None,
            "network": OmegaConf.to_container(cfg.space.retrain), "data": splits.sizes(),
        }
        run.save_plot("curves.png", curves_figure(history, f"retrain {arch.arch_id} on {cfg.dataset.name}"))
        result["wall_time_s"] = round(run.elapsed(), 2)
        run.write_json("result.json", result)
        run.update_manifest(summary={k: result[k] for k in ("val_acc", "test_acc", "params", "flops")})
    return RetrainOutcome(run, result, history)


def batch_selection(run_dir: Path, top: int | None, sample: int | None, seed: int) -> list[Arch]:
    """`--top K`: the K best of a run's ranking. `--sample K`: one seeded pick from each of K equal
    slices of the ranking, so the retrained set spans good and bad scores (what a correlation needs)."""
    from nascli.archset import run_archs

    if (top is None) == (sample is None):
        raise UserError("pass exactly one of --top K or --sample K")
    k = int(top if top is not None else sample)
    if k < 1:
        raise UserError("--top / --sample must be at least 1")
    archs = run_archs(run_dir)
    if top is not None:
        return archs[:k]
    k = min(k, len(archs))
    rng = random.Random(seed)
    bounds = [round(i * len(archs) / k) for i in range(k + 1)]
    return [archs[rng.randrange(bounds[i], bounds[i + 1])] for i in range(k)]


@dataclass
class BatchOutcome:
    outcomes: list[RetrainOutcome]
    archs: list[Arch]
    seeds: list[int]


def run_batch(run_dir: Path, archs: list[Arch], seeds: list[int], compose_cfg, *, run_root: Path, argv: list[str],
              overrides: list[str]) -> BatchOutcome:
    """Retrain each architecture once per seed: one retrain run each, joinable by arch_id."""
    from nascli.progress import progress_bar

    outcomes = []
    with progress_bar(f"retraining {len(archs)} architectures x {len(seeds)} seed(s)", len(archs) * len(seeds)) \
            as advance:
        for seed in seeds:
            cfg = compose_cfg(seed)
            for arch in archs:
                source = {"ref": str(run_dir), "run": str(run_dir), "batch": True}
                outcomes.append(run_retrain(arch, cfg, run_root=run_root, argv=argv, overrides=overrides,
                                            source=source))
                advance(1)
    return BatchOutcome(outcomes, archs, seeds)
