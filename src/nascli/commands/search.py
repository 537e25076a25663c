"""`nas search`: run a strategy and write the search run directory."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from nascli import distributed
from nascli.arch import Arch
from nascli.config import resume_config
from nascli.data import load_splits
from nascli.device import resolve, same_precision, seed_everything
from nascli.errors import UserError
from nascli.executors import make_executor
from nascli.figures import scores_figure
from nascli.groundtruth import open_table
from nascli.latency_table import check_method, latency_column
from nascli.precision import check_settings
from nascli.protocol import write_evaluations
from nascli.results import BENCH_PREFIX, candidates_frame, rank_frame
from nascli.resume import Checkpointer, discard_resume, graceful_signals, restore_rng, take_over
from nascli.rundir import RunDir
from nascli.spaces.base import SearchSpace, get_space
from nascli.strategies.base import Candidate, SearchContext, Strategy, strategy_class
from nascli.tracking.base import attach_tracker, check_tracker


@dataclass
class SearchOutcome:
    run: RunDir
    ranked: pd.DataFrame
    best: Arch
    truth_column: str | None
    seconds: float
    warnings: list[str]
    cfg: DictConfig


def run_search(cfg: DictConfig, *, run_root: Path, argv: list[str], overrides: list[str]) -> SearchOutcome:
    strategy_cls, space, table, runtime, generator, splits, executor = _prepare(cfg)
    with _ranks(cfg, runtime, run_root) as (backend, root):
        extra = {"strategy": cfg.strategy.name, "space": space.name, "dataset": cfg.dataset.name,
                 "data": splits.sizes(), "torch_threads": torch.get_num_threads(), "precision": runtime.record()}
        if backend is not None:
            extra["distributed"] = {"world_size": distributed.world_size(), "backend": backend}
        run = RunDir.create(root, "search", f"{cfg.strategy.name}_{cfg.dataset.name}", cfg, argv=argv,
                            overrides=overrides, device=runtime.describe(), extra=extra)
        ctx = SearchContext(cfg, space, splits, runtime, generator, run, benchmark=table, executor=executor)
        return _agreed(_search(ctx, strategy_cls, saved=None), backend)


# Strategies whose supernet trains data-parallel under torchrun (gradients all-reduced every step).
DATA_PARALLEL = ("snas", "smash")


def resume_search(ref: str, overrides: list[str], *, run_root: Path,
                  notify: Callable[[str], None] = lambda message: None) -> SearchOutcome:
    """`nas search --resume RUN`: continue RUN from its last checkpoint, with the run's own config.
    `notify` hears at once what the user should know (a damaged checkpoint that was skipped).

    Under torchrun (a data-parallel run resumed with its ranks), rank 0 takes the run over and sends its
    checkpoint to the other ranks, which resume from the same state into scratch directories."""
    main = distributed.is_main()
    # Only rank 0 checks the run is free: by the time another rank looks, rank 0 holds it.
    run = RunDir.resumable(ref, run_root, "search", check=main)
    cfg, extended = resume_config(run, overrides)
    strategy_cls, space, table, runtime, generator, splits, executor = _prepare(cfg)
    with _ranks(cfg, runtime, run_root) as (backend, root):
        saved = None
        if main:
            same_precision(run.manifest.get("precision"), runtime)
            saved = take_over(run, cfg, extended, notify)
            _note_world_change(run, notify)
        if backend is not None:
            saved = distributed.broadcast(saved)
            world = {"world_size": distributed.world_size(), "backend": backend}
            if main:
                run.update_manifest(distributed=world)
            else:
                run = RunDir.create(root, "search", run.path.name, cfg, argv=[], overrides=overrides,
                                    device=runtime.describe(), extra={"distributed": world})
        ctx = SearchContext(cfg, space, splits, runtime, generator, run, benchmark=table, executor=executor)
        return _agreed(_search(ctx, strategy_cls, saved=saved), backend)


def _note_world_change(run: RunDir, notify: Callable[[str], None]) -> None:
    """Resuming with another number of ranks is allowed (a node was lost) but sums gradients in another order."""
    before = int((run.manifest.get("distributed") or {}).get("world_size", 1))
    now = distributed.world_size()
    if before != now:
        warning = (f"resumed with {now} rank(s), the run started with {before}: same schedule, but the result is "
                   f"not byte-identical to an uninterrupted run (resume with --nproc-per-node {before} for that)")
        notify(warning)
        run.update_manifest(resume_warnings=[*run.manifest.get("resume_warnings", []), warning])


@contextmanager
def _ranks(cfg: DictConfig, runtime, run_root: Path):
    """Join torchrun's process group when launched by it: yields (backend or None, where this rank writes runs).
    Rank 0 writes the run directory; the other ranks write to scratch directories removed at the end."""
    backend = distributed.start(runtime.device)
    scratch = None
    try:
        if backend is not None:
            if cfg.strategy.name not in DATA_PARALLEL:
                raise UserError(f"strategy '{cfg.strategy.name}' does not train data-parallel; run it without "
                                f"torchrun (under torchrun: {', '.join(DATA_PARALLEL)})")
            if not distributed.is_main():
                scratch = run_root = Path(tempfile.mkdtemp(prefix=f"nascli-rank{distributed.rank()}-"))
        yield backend, run_root
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        distributed.stop()


def _agreed(out: SearchOutcome, backend: str | None) -> SearchOutcome:
    """Every rank derived the same answer (checked each epoch too), recorded for the reader."""
    if backend is not None:
        agree = distributed.all_agree(out.best.arch_id)
        if distributed.is_main():
            world = {"world_size": distributed.world_size(), "backend": backend}
            out.run.update_manifest(distributed={**world, "ranks_agree": agree})
    return out


def _prepare(cfg: DictConfig):
    """Everything before the run directory, in the same order for a new and a resumed run (same RNG draws)."""
    strategy_cls = strategy_class(cfg.strategy.name)
    if cfg.train.include_val:
        raise UserError("train.include_val=true would train candidates on the val split they are ranked on; "
                        "it is a `nas retrain` option only: drop it from the search")
    executor = make_executor(cfg.executor, cfg.device)  # a missing engine is named before any work
    check_settings(cfg.device)
    check_tracker(cfg)
    if cfg.get("latency") is not None:
        check_method(str(cfg.latency.method))
    if strategy_cls.spaces is not None and cfg.space.name not in strategy_cls.spaces:
        raise UserError(f"strategy '{cfg.strategy.name}' searches {', '.join(strategy_cls.spaces)}, "
                        f"not '{cfg.space.name}'; pick space={strategy_cls.spaces[0]}")
    space = get_space(cfg.space.name, cfg.space)
    strategy_cls.check_config(cfg.strategy, space)
    table = open_table(cfg.benchmark, space)
    generator = seed_everything(int(cfg.seed))
    splits = load_splits(cfg.dataset)
    runtime = resolve(cfg.device, strategy_cls.workload, splits.shape, space.name)
    splits = splits.to(runtime.device)
    return strategy_cls, space, table, runtime, generator, splits, executor


def _search(ctx: SearchContext, strategy_cls: type[Strategy], saved: dict | None) -> SearchOutcome:
    """The search proper; `saved` is a resume checkpoint's payload ({} when the run died before its first)."""
    cfg, run, space, table, splits = ctx.cfg, ctx.run, ctx.space, ctx.benchmark, ctx.splits
    if distributed.is_main():  # the other ranks' scratch runs are not experiments of their own
        attach_tracker(run, cfg)
    with run.running(), graceful_signals():
        # Under torchrun rank 0's checkpoint holds the state every rank shares; the others save none.
        ctx.checkpointer = Checkpointer(run, float(cfg.checkpoint.every_s), (saved or {}).get("saves", 0),
                                        enabled=distributed.is_main())
        # Candidates train with device.threads (one when unset) wherever they run: record what they used.
        run.update_manifest(executor={**ctx.executor.describe(), "threads_per_task": int(cfg.device.threads or 1)})
        strategy = strategy_cls(cfg.strategy)
        strategy.setup(ctx)
        if saved is not None:
            _continue_from(ctx, strategy, saved)
        started = time.perf_counter()
        candidates = strategy.search(ctx)
        seconds = time.perf_counter() - started
        frame = candidates_frame(candidates, space, splits.shape, table)
        latency_method = _add_latency(frame, ctx, [c.arch for c in candidates])
        ranked = rank_frame(frame)
        if ranked.empty:
            raise RuntimeError("every candidate failed; see metrics.jsonl and archs.csv for the errors")
        run.save_checkpoint(RunDir.STRATEGY_CKPT, {
            "kind": "strategy", "strategy": cfg.strategy.name,
            "state": strategy.state_dict(), "config": OmegaConf.to_container(cfg),
        })
        best = write_results(run, cfg, space, candidates, frame, ranked)
        truth_column = BENCH_PREFIX + cfg.benchmark.metric if table is not None else None
        run.save_plot("scores.png", scores_figure(frame, f"{cfg.strategy.name} on {cfg.dataset.name}", truth_column))
        summary = {"search_seconds": round(seconds, 2), "candidates": len(frame),
                   "failed": int((frame["status"] != "ok").sum()), "best_arch_id": best.arch_id,
                   "best_score": _float(ranked.set_index("arch_id").loc[best.arch_id, "score"]),
                   "selected_by": "strategy" if _selected(candidates) else "score", "latency": latency_method,
                   **ctx.checkpointer.summary()}
        if truth_column and truth_column in ranked.columns:
            summary["best_truth"] = {cfg.benchmark.metric: _float(ranked.set_index("arch_id").loc[best.arch_id,
                                                                                              truth_column])}
        protocol = write_evaluations(run, table)
        if protocol is not None:
            summary["protocol"] = protocol
        if ctx.warnings:
            summary["warnings"] = list(ctx.warnings)
        run.update_manifest(summary=summary)
        discard_resume(run)
    return SearchOutcome(run, ranked, best, truth_column, seconds, list(ctx.warnings), cfg)


def _add_latency(frame, ctx: SearchContext, archs) -> str:
    """The `latency` column (ms, retrain-size network on this device), after `flops`; returns how it was got.
    Rank 0 only: the other ranks' results are never written."""
    if ctx.cfg.get("latency") is None or not distributed.is_main() or frame.empty:
        return "none"
    latencies, how = latency_column(archs, ctx.space, ctx.splits.shape, ctx.space.cfg.retrain, ctx.cfg.latency,
                                    ctx.run.path.parent.parent, ctx.runtime.device, ctx.runtime.channels_last,
                                    ctx.runtime.amp)
    if latencies:
        frame.insert(frame.columns.get_loc("flops") + 1, "latency", frame["arch_id"].map(latencies))
    return how


def _continue_from(ctx: SearchContext, strategy: Strategy, saved: dict) -> None:
    """Put a resumed search where its checkpoint left it: strategy state, warnings, every RNG, and
    metrics.jsonl cut back to what had been logged then."""
    ctx.run.truncate_metrics(int(saved.get("metrics_bytes", 0)))
    ctx.run.log(event="resumed", checkpoint=saved.get("saves", 0))
    if not saved:
        return  # killed before its first checkpoint: the search starts over, with the same seed
    state = saved["state"]
    ctx.warnings[:] = state["warnings"]
    ctx.generator.set_state(state["generator"])
    strategy.resume(state["strategy"])
    restore_rng(saved["rng"])


def write_results(run: RunDir, cfg: DictConfig, space: SearchSpace, candidates: list[Candidate],
                  frame: pd.DataFrame, ranked: pd.DataFrame) -> Arch:
    run.write_results(frame, ranked)
    rank_of = dict(zip(ranked["arch_id"], ranked["rank"], strict=True))
    by_id = {}
    for cand in candidates:
        by_id.setdefault(cand.arch.arch_id, cand)
    for arch_id, cand in by_id.items():
        run.write_arch(arch_id, _arch_doc(run, cfg, space, cand, rank_of.get(arch_id)))
    # A strategy may name its answer (SNAS: the argmax child); otherwise the best score wins.
    chosen = _selected(candidates)
    best = chosen if chosen is not None and chosen.status == "ok" else by_id[ranked.iloc[0]["arch_id"]]
    run.write_json(RunDir.ARCH, _arch_doc(run, cfg, space, best, rank_of.get(best.arch.arch_id)))
    return best.arch


def _selected(candidates: list[Candidate]) -> Candidate | None:
    return next((c for c in candidates if c.extra.get("selected")), None)


def _arch_doc(run: RunDir, cfg: DictConfig, space: SearchSpace, cand: Candidate, rank: int | None) -> dict:
    source = {"run": str(run.path), "strategy": cfg.strategy.name, "dataset": cfg.dataset.name,
              "score": _float(cand.score), "rank": int(rank) if rank is not None else None, "status": cand.status}
    return cand.arch.to_json(source=source, description=space.describe(cand.arch))


def _float(v) -> float | None:
    v = float(v)
    return None if v != v else v
