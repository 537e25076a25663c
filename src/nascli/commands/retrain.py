"""`nas retrain ARCH`: train one architecture from scratch; report val and test accuracy."""

from __future__ import annotations

import random
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from nascli.arch import Arch
from nascli.config import compose, inherited_groups, inherited_overrides
from nascli.data import load_splits
from nascli.device import resolve, seed_everything
from nascli.errors import UserError
from nascli.figures import curves_figure
from nascli.measure import cost
from nascli.rundir import RunDir
from nascli.spaces.base import get_space
from nascli.train import evaluate, fit, make_loader


def batch_source(ref: str, run_root: Path) -> RunDir:
    """The search or rank run whose architectures `--top` / `--sample` retrain (`latest`: newest search run)."""
    run = RunDir.latest(run_root, "search") if ref == "latest" and not Path(ref).exists() else RunDir.open(ref)
    if run.manifest.get("kind") not in ("search", "rank"):
        raise UserError(f"{run.path} is a {run.manifest.get('kind')} run; --top/--sample take a search or rank run")
    return run


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
        run.write_json(RunDir.ARCH, arch.to_json(source=source, description=space.describe(arch)))
        best = {"val_acc": float("-inf"), "epoch": 0}
        config = OmegaConf.to_container(cfg)

        def checkpoint(record, model, opt, sched) -> dict:
            return {"kind": "retrain", "epoch": record["epoch"],
                    "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "metrics": record, "config": config, "arch": arch.to_json()}

        def on_epoch(record, model, opt, sched):
            run.log(event="epoch", **record)
            is_last = record["epoch"] == epochs
            if record["val_acc"] > best["val_acc"]:
                best.update(val_acc=record["val_acc"], epoch=record["epoch"])
                run.save_checkpoint(RunDir.BEST_CKPT, checkpoint(record, model, opt, sched))
            if is_last or record["epoch"] % max(int(cfg.checkpoint_every), 1) == 0:
                run.save_checkpoint(RunDir.LAST_CKPT, checkpoint(record, model, opt, sched))

        started = time.perf_counter()
        history = fit(model, splits, train_cfg, epochs=epochs, batch_size=int(cfg.budget.batch_size),
                      runtime=runtime, generator=generator, max_batches=cfg.budget.max_batches,
                      dataset_cfg=cfg.dataset, on_epoch=on_epoch, description=f"retrain {arch.arch_id}")
        train_seconds = time.perf_counter() - started
        test_loader = make_loader(splits.test, splits, 256, runtime, train=False)
        final_test = evaluate(model, test_loader, runtime)
        best_state = torch.load(run.checkpoint(RunDir.BEST_CKPT), map_location=runtime.device, weights_only=True)
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
        run.write_json(RunDir.RESULT, result)
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
class RetrainPlan:
    """What `nas retrain` will do: one (architecture, config) job per retrain, in order."""

    jobs: list[tuple[Arch, DictConfig]]
    source: dict  # written into each run's arch.json / manifest: where the architecture came from
    batch_run: RunDir | None = None  # --top / --sample: the run the architectures come from
    notice: str | None = None  # what was taken from an earlier run, for the user to see


def parse_seeds(text: str | None) -> list[int]:
    if text is None:
        return []
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds {text} is not a list of integers; write e.g. --seeds 0,1,2") from None
    if not seeds:
        raise UserError("--seeds is empty; write e.g. --seeds 0,1,2")
    return list(dict.fromkeys(seeds))


def plan_retrain(ref: str, overrides: list[str], *, top: int | None, sample: int | None, seeds: str | None,
                 run_root: Path, config_dir: Path | None) -> RetrainPlan:
    """Resolve REF (or a run's --top / --sample architectures), the seeds, and every job's config, inheriting
    what REF's run says (its dataset; for a retrain checkpoint its whole training setup)."""
    from nascli.arch_io import resolve_arch, resolve_ref_path

    seed_list = parse_seeds(seeds)
    if top is not None or sample is not None:
        run = batch_source(ref, run_root)
        inherited, _ = inherited_overrides(str(run.path), overrides, ("space", "dataset"))
        base = compose("retrain", inherited + overrides, config_dir)
        archs = batch_selection(run.path, top, sample, int(base.seed))
        seed_list = seed_list or [int(base.seed)]
        cfgs = {s: compose("retrain", inherited + overrides + [f"seed={s}"], config_dir) for s in seed_list}
        notice = (f"retraining {len(archs)} architectures of {run.path} on '{base.dataset.name}' with "
                  f"seed(s) {', '.join(map(str, seed_list))}")
        jobs = [(arch, cfgs[s]) for s in seed_list for arch in archs]
        return RetrainPlan(jobs, {"ref": str(run.path), "run": str(run.path), "batch": True}, run, notice)
    ref = resolve_ref_path(ref, run_root)
    arch = resolve_arch(ref)
    groups = inherited_groups(ref)
    inherited, source_run = inherited_overrides(ref, overrides + [f"seed={s}" for s in seed_list[:1]], groups)
    has_space = any(o.split("=", 1)[0].lstrip("+~") == "space" for o in overrides)
    prefix = ([] if has_space else [f"space={arch.space}"]) + inherited
    jobs = [(arch, compose("retrain", prefix + overrides + ([f"seed={s}"] if s is not None else []), config_dir))
            for s in seed_list or [None]]
    notice = None
    if inherited:
        what = f"dataset '{jobs[0][1].dataset.name}'" if groups == ("dataset",) else f"the {', '.join(groups)} config"
        notice = f"using {what} of {RunDir.kind_of(source_run)} run {source_run} (override with KEY=VALUE)"
    return RetrainPlan(jobs, {"ref": ref, **({"run": source_run} if source_run else {})}, None, notice)


def run_plan(plan: RetrainPlan, *, run_root: Path, argv: list[str], overrides: list[str],
             on_done=lambda outcome: None) -> list[RetrainOutcome]:
    """Run every job of the plan, one retrain run each (joinable by arch_id); `on_done` sees each outcome."""
    from nascli.progress import progress_bar

    outcomes = []
    total = len(plan.jobs) if plan.batch_run is not None else None
    with progress_bar(f"retraining {len(plan.jobs)} run(s)", total) if total else _no_bar() as advance:
        for arch, cfg in plan.jobs:
            outcomes.append(run_retrain(arch, cfg, run_root=run_root, argv=argv, overrides=overrides,
                                        source=plan.source))
            on_done(outcomes[-1])
            advance(1)
    return outcomes


@contextmanager
def _no_bar():
    yield lambda n=1, **fields: None
