"""`nas retrain ARCH`: train one architecture from scratch; report val and test accuracy."""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from nascli.arch import Arch
from nascli.config import compose, inherited_groups, inherited_overrides, resume_config
from nascli.data import load_splits
from nascli.device import resolve, same_precision, seed_everything, torch_threads
from nascli.errors import UserError
from nascli.executors import make_executor
from nascli.executors.base import TaskFailure
from nascli.figures import curves_figure
from nascli.latency import cached_trained_latency
from nascli.measure import cost
from nascli.precision import NETWORK, check_settings
from nascli.resume import Checkpointer, discard_resume, graceful_signals, restore_rng, take_over
from nascli.retrain_identity import result_settings, settings_hash
from nascli.rundir import RunDir
from nascli.spaces.base import get_space
from nascli.tracking.base import attach_tracker, check_tracker
from nascli.train import evaluate, fit, make_loader


def batch_source(ref: str, run_root: Path) -> RunDir:
    """The search or rank run whose architectures `--top` / `--sample` retrain (`latest`: newest search run)."""
    run = RunDir.latest(run_root, "search") if ref == "latest" and not Path(ref).exists() else RunDir.open(ref)
    if run.manifest.get("kind") not in ("search", "rank"):
        raise UserError(f"{run.path} is a {run.manifest.get('kind')} run; --top/--sample take a search or rank run")
    run.require_finished()
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
    setup = _setup(arch, cfg)
    # What the result depends on besides the seed, the thread count included (a lone retrain uses the
    # machine's cores unless device.threads is set, a batch's retrains one each): `nas correlate` averages
    # only retrains of one settings hash.
    threads = torch.get_num_threads()
    settings = result_settings(cfg, threads=threads, device=str(setup.runtime.device),
                               precision=setup.runtime.record())
    run = RunDir.create(run_root, "retrain", arch.arch_id, cfg, argv=argv, overrides=overrides,
                        device=setup.runtime.describe(),
                        extra={"arch_id": arch.arch_id, "space": arch.space, "dataset": cfg.dataset.name,
                               "data": setup.splits.sizes(), "source_run": (source or {}).get("run"), **setup.costs,
                               "torch_threads": threads, "precision": setup.runtime.record(),
                               "settings_hash": settings_hash(settings),
                               "settings": settings})
    run.write_json(RunDir.ARCH, arch.to_json(source=source, description=setup.space.describe(arch)))
    return _train(run, arch, cfg, setup, saved=None)


def resume_retrain(run: RunDir, overrides: list[str],
                   notify: Callable[[str], None] = lambda message: None) -> RetrainOutcome:
    """Continue an interrupted retrain run from its last checkpoint (its own config; epochs may grow)."""
    from nascli.arch_io import read_arch_file

    cfg, extended = resume_config(run, overrides)
    arch = read_arch_file(run.path / RunDir.ARCH)
    setup = _setup(arch, cfg)
    same_precision(run.manifest.get("precision"), setup.runtime)
    return _train(run, arch, cfg, setup, saved=take_over(run, cfg, extended, notify))


@dataclass
class _Setup:
    space: object
    runtime: object
    generator: torch.Generator
    splits: object
    model: torch.nn.Module
    costs: dict


def _setup(arch: Arch, cfg: DictConfig) -> _Setup:
    """Everything before training, in the same order for a new and a resumed run (same RNG draws)."""
    space = get_space(arch.space, cfg.space)
    check_tracker(cfg)  # a missing tracker package is named before any work
    check_settings(cfg.device)
    generator = seed_everything(int(cfg.seed))
    splits = load_splits(cfg.dataset)
    runtime = resolve(cfg.device, NETWORK, splits.shape, arch.space)
    splits = splits.to(runtime.device)
    model = space.build(arch, splits.shape, cfg.space.retrain, auxiliary=cfg.train.auxiliary_weight > 0)
    costs = cost(model, splits.shape)
    return _Setup(space, runtime, generator, splits, runtime.prepare(model), costs)


def _train(run: RunDir, arch: Arch, cfg: DictConfig, setup: _Setup, saved: dict | None) -> RetrainOutcome:
    """Train, test and write result.json; `saved` is a resume checkpoint's payload ({}: none was written)."""
    model, runtime, splits = setup.model, setup.runtime, setup.splits
    epochs = int(cfg.budget.epochs)
    train_cfg = cfg.train
    attach_tracker(run, cfg)
    with run.running(), graceful_signals():
        best = {"val_acc": float("-inf"), "epoch": 0}
        config = OmegaConf.to_container(cfg)
        checkpointer = Checkpointer(run, float(cfg.checkpoint.every_s), (saved or {}).get("saves", 0))
        resume_state = None
        if saved is not None:
            run.truncate_metrics(int(saved.get("metrics_bytes", 0)))
            run.log(event="resumed", checkpoint=saved.get("saves", 0))
            if saved:
                resume_state = saved["state"]
                best.update(resume_state["best"])
                restore_rng(saved["rng"])

        def checkpoint(record, model, opt, sched) -> dict:
            return {"kind": "retrain", "epoch": record["epoch"],
                    "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "metrics": record, "config": config, "arch": arch.to_json(),
                    "input": splits.input_record(cfg.dataset.resize)}

        def on_epoch(record, model, opt, sched):
            run.log(event="epoch", **record)
            is_last = record["epoch"] == epochs
            if record["val_acc"] > best["val_acc"]:
                best.update(val_acc=record["val_acc"], epoch=record["epoch"])
                run.save_checkpoint(RunDir.BEST_CKPT, checkpoint(record, model, opt, sched))
            if is_last or record["epoch"] % max(int(cfg.checkpoint_every), 1) == 0:
                run.save_checkpoint(RunDir.LAST_CKPT, checkpoint(record, model, opt, sched))

        def resume_point(build, boundary):
            checkpointer.step(lambda: {**build(), "best": dict(best)}, boundary)

        started = time.perf_counter()
        history = fit(model, splits, train_cfg, epochs=epochs, batch_size=int(cfg.budget.batch_size),
                      runtime=runtime, generator=setup.generator, max_batches=cfg.budget.max_batches,
                      dataset_cfg=cfg.dataset, on_epoch=on_epoch, description=f"retrain {arch.arch_id}",
                      checkpoint=resume_point, resume=resume_state)
        train_seconds = time.perf_counter() - started
        test_loader = make_loader(splits.test, splits, 256, runtime, train=False)
        final_test = evaluate(model, test_loader, runtime)
        best_state = torch.load(run.checkpoint(RunDir.BEST_CKPT), map_location=runtime.device, weights_only=True)
        model.load_state_dict(best_state["model"])
        best_test = evaluate(model, test_loader, runtime)
        last = history[-1]
        # Wall times stay out: result.json is the same bytes for the same seed and config, resumed or not (train
        # and wall time are in the manifest and metrics.jsonl). The inference latency is in, because it is
        # measured once per network and device setting under the run root (a resume reads that measurement).
        timing = cached_trained_latency(model, splits.shape, cfg.latency, runtime.describe(), runtime.amp,
                                        run.path.parent.parent, {"arch_id": arch.arch_id, "space": arch.space,
                                                                 **OmegaConf.to_container(cfg.space.retrain)})
        result = {
            "arch_id": arch.arch_id, "space": arch.space, "dataset": cfg.dataset.name, "seed": int(cfg.seed),
            "epochs": epochs, "val_acc": last["val_acc"], "test_acc": final_test["acc"],
            "test_loss": final_test["loss"], "val_held_out": not bool(train_cfg.include_val),
            "best_epoch": best["epoch"], "best_val_acc": best["val_acc"], "test_acc_at_best_val": best_test["acc"],
            **setup.costs, "latency_ms": timing["latency_ms"], "throughput_img_s": timing["throughput_img_s"],
            "network": OmegaConf.to_container(cfg.space.retrain), "data": splits.sizes(),
        }
        run.save_plot("curves.png", curves_figure(history, f"retrain {arch.arch_id} on {cfg.dataset.name}"))
        run.write_json(RunDir.RESULT, result)
        run.write_json(RunDir.LATENCY, timing)
        run.log(event="timing", train_seconds=round(train_seconds, 2), **checkpointer.summary())
        run.update_manifest(summary={**{k: result[k] for k in ("val_acc", "test_acc", "params", "flops")},
                                     "latency_ms": timing["latency_ms"], "throughput_img_s": timing["throughput_img_s"],
                                     "train_seconds": round(train_seconds, 2), **checkpointer.summary()})
        discard_resume(run)
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
             on_done=lambda outcome: None, resume: bool = False,
             notify: Callable[[str], None] = lambda message: None) -> list[RetrainOutcome]:
    """Run every job of the plan, one retrain run each (joinable by arch_id); `on_done` sees each outcome.
    With `resume`, a job whose run already finished is taken as is and an interrupted one is resumed."""
    from nascli.progress import progress_bar

    total = len(plan.jobs) if plan.batch_run is not None else None
    earlier = _earlier_runs(plan, run_root) if resume else {}
    executor = None
    if plan.batch_run is not None:
        executor = make_executor(plan.jobs[0][1].executor, plan.jobs[0][1].device)
    outcomes: dict[int, RetrainOutcome] = {}
    todo = []  # (job index, task) for the retrains still to run
    for index, (arch, cfg) in enumerate(plan.jobs):
        run = earlier.get((arch.arch_id, int(cfg.seed), OmegaConf.to_yaml(cfg)))
        if run is not None and run.status == "done":
            outcomes[index] = RetrainOutcome(run, json.loads((run.path / RunDir.RESULT).read_text()), [])
        else:
            resumable = str(RunDir.resumable(str(run.path), run_root, "retrain").path) if run is not None else None
            todo.append((index, {"arch": arch.to_json(), "cfg": OmegaConf.to_container(cfg), "resume": resumable}))
    shared = {"run_root": str(run_root), "argv": argv, "overrides": overrides, "source": plan.source,
              "batch": plan.batch_run is not None, "parent_pid": os.getpid()}
    with progress_bar(f"retraining {len(plan.jobs)} run(s)", total) if total else _no_bar() as advance:
        for index in sorted(outcomes):
            on_done(outcomes[index])
            advance(1)
        if executor is None:
            results = ((i, retrain_task(shared, task)) for i, (_, task) in enumerate(todo))
        else:
            results = executor.run(retrain_task, shared, [task for _, task in todo])
        for i, result in results:
            index = todo[i][0]
            if isinstance(result, TaskFailure):
                raise RuntimeError(f"retrain of {plan.jobs[index][0].arch_id} failed after {result.attempts} "
                                   f"attempt(s): {result.error}")
            outcomes[index] = RetrainOutcome(RunDir.open(result["run"]), result["result"], result["history"])
            on_done(outcomes[index])
            advance(1)
    return [outcomes[i] for i in sorted(outcomes)]


def retrain_task(shared: dict, task: dict) -> dict:
    """One retrain of a plan, in this process or on an executor's worker (module-level: it is pickled).
    A batch's retrains each train with device.threads or one thread, wherever they run, so their results
    do not depend on the worker count or engine."""
    import os

    cfg = OmegaConf.create(task["cfg"])
    arch = Arch(task["arch"]["space"], task["arch"]["genotype"])
    threads = int(cfg.device.threads or 1) if shared["batch"] else None
    if os.getpid() != shared["parent_pid"]:
        os.environ["NASCLI_PROGRESS"] = "0"  # one bar (the parent's), not one per worker
    with torch_threads(threads):
        if task["resume"] is not None:
            out = resume_retrain(RunDir.open(task["resume"], "retrain"), [])
        else:
            out = run_retrain(arch, cfg, run_root=Path(shared["run_root"]), argv=shared["argv"],
                              overrides=shared["overrides"], source=shared["source"])
    return {"run": str(out.run.path), "result": out.result, "history": out.history}


def _earlier_runs(plan: RetrainPlan, run_root: Path) -> dict[tuple[str, int, str], RunDir]:
    """The newest retrain run of each (arch_id, seed, config) made from the plan's source run."""
    base = Path(run_root) / "retrain"
    found: dict[tuple[str, int, str], RunDir] = {}
    runs = []
    for path in sorted(base.glob("*/manifest.json")) if base.is_dir() else []:
        try:
            runs.append(RunDir.open(path.parent, "retrain"))
        except UserError:
            continue
    runs.sort(key=lambda r: str(r.manifest.get("started_at") or ""))
    for run in runs:
        if not _same_path(run.manifest.get("source_run"), plan.source.get("run")) or run.status == "failed":
            continue
        try:
            key = (str(run.manifest.get("arch_id")), int(run.manifest.get("seed")), OmegaConf.to_yaml(run.config))
        except (OSError, ValueError, TypeError):
            continue
        found[key] = run
    return found


def _same_path(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and Path(a).resolve() == Path(b).resolve()


@contextmanager
def _no_bar():
    yield lambda n=1, **fields: None
