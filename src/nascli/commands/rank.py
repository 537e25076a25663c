"""`nas rank`: score a set of architectures with proxies or a search run's strategy; write a rank run."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from nascli.archset import load_arch_set
from nascli.config import inherited_overrides
from nascli.data import load_splits
from nascli.device import resolve, seed_everything
from nascli.errors import UserError
from nascli.executors import Executor, make_executor
from nascli.executors.base import TaskFailure
from nascli.groundtruth import open_table
from nascli.latency import latency_settings
from nascli.latency_table import LatencyTable, check_method, has_table, latency_column
from nascli.objectives import objective_of
from nascli.precision import ZERO_COST, check_settings
from nascli.progress import progress_bar
from nascli.proxies import PROXIES, ProxyPlan, plan_proxies
from nascli.proxies.scoring import ScoringSetup, score_chunk
from nascli.results import BENCH_PREFIX, candidates_frame, rank_frame
from nascli.rundir import RunDir, load_checkpoint
from nascli.spaces.base import get_space
from nascli.strategies.base import Candidate, SearchContext, Strategy, strategy_class
from nascli.strategy_scoring import make_setup, score_strategy_chunk
from nascli.train import drawn_batches

STRATEGY_PREFIX = "strategy_"  # column of a strategy's own score, e.g. strategy_snas


@dataclass
class RankOutcome:
    run: RunDir
    ranked: pd.DataFrame
    columns: list[str]  # the score columns, first one ranks
    truth_column: str | None
    seconds: float
    directions: dict[str, int]  # score column -> +1 higher is better / -1 lower is better
    failed: int = 0
    degenerate: int = 0


@dataclass
class RankSources:
    refs: list[str]  # what to rank (run dirs, arch.json or CSV files)
    search_run: RunDir | None  # whose strategy scores, when no proxy= is given
    inherited: list[str]  # space/dataset/benchmark overrides taken from the first run given
    defaulted: bool  # no source was given: the latest search run was taken


def resolve_sources(refs: list[str], overrides: list[str], sample: int | None, run_root: Path,
                    every: bool = False) -> RankSources:
    """`latest` and no source at all mean the latest search run; a run given lends its space and dataset."""
    defaulted = False
    for ref in refs:
        path = Path(ref).expanduser()
        if ref == "latest" and not path.exists():
            continue
        if not path.exists():
            raise UserError(f"{ref} does not exist; pass a run directory, an arch.json or a CSV of architectures")
        if path.is_file() and path.suffix.lower() in (".pt", ".pth", ".ckpt"):
            load_checkpoint(path)  # a corrupt or foreign file is named as such, not as a misplaced checkpoint
            raise UserError(f"{ref} is a checkpoint, not a set of architectures; pass the run directory it belongs "
                            "to (its strategy scores), an arch.json or a CSV")
    if refs == ["latest"] and not Path("latest").exists():
        refs = [str(RunDir.latest(run_root, "search").path)]
    if not refs and sample is None and not every:
        refs, defaulted = [str(RunDir.latest(run_root, "search").path)], True
    run_dirs = [RunDir.open(r) for r in refs if Path(r).is_dir()]
    for run_dir in run_dirs:
        run_dir.require_finished()
        table = next((n for n in (RunDir.RANKED, RunDir.ARCHS) if (run_dir.path / n).is_file()), None)
        if table is not None:
            run_dir.read_frame(table)  # a damaged results file is named before any work or notice
    search_run = next((r for r in run_dirs if r.manifest.get("kind") == "search"), None)
    # A run lends its space, data and benchmark table: its cells are ranked on what it searched, truth included.
    inherited = (inherited_overrides(str(run_dirs[0].path), overrides, ("space", "dataset", "benchmark"))[0]
                 if run_dirs else [])
    return RankSources(refs, search_run, inherited, defaulted)


def run_rank(cfg: DictConfig, *, refs: list[str], sample: int | None, search_run: RunDir | None,
             run_root: Path, argv: list[str], overrides: list[str], every: bool = False,
             notify: Callable[[str], None] = lambda message: None) -> RankOutcome:
    space = get_space(cfg.space.name, cfg.space)
    table = open_table(cfg.benchmark, space)
    if cfg.network not in ("retrain", "search"):
        raise UserError(f"network={cfg.network} is not a size; use network=retrain or network=search")
    if cfg.proxy is None and search_run is None:
        raise UserError("nothing to score with: pass proxy=NAME (e.g. proxy=synflow) or a search run directory")
    if int(cfg.chunk) < 1 or int(cfg.batches) < 1 or (cfg.batch_size is not None and int(cfg.batch_size) < 1):
        raise UserError("chunk, batches and batch_size must be positive integers")
    plan = plan_proxies(cfg.proxy, proxy_names(cfg.rank_mean), proxy_names(cfg.vote)) if cfg.proxy is not None else None
    objective = objective_of(cfg.get("objective"))
    if plan and "latency" in plan.columns and str(cfg.latency.method) == "table" and not has_table(space):
        raise UserError(f"space '{space.name}' has no per-op latency table; use latency.method=measured")
    if check_method(str(cfg.latency.method)) == "none" and (objective or (plan and "latency" in plan.columns)):
        raise UserError("latency.method=none gives no latency to rank by; use latency.method=measured or table")
    if cfg.own.val_images is not None and int(cfg.own.val_images) < 1:
        raise UserError("own.val_images must be a positive number of images, or null for the whole val split")
    if plan is None and (sample or every or len(refs) > 1):
        # The run scores what else was given; it is not a source too: its own candidates would make a uniform
        # sample non-uniform.
        refs = [r for r in refs if Path(r).expanduser().resolve() != search_run.path.resolve()]
    archset = load_arch_set(refs, space, sample, int(cfg.seed), every)
    executor = make_executor(cfg.executor, cfg.device)
    check_settings(cfg.device)
    seed_everything(int(cfg.seed))
    splits = load_splits(cfg.dataset)
    runtime = resolve(cfg.device, ZERO_COST, splits.shape, space.name)
    splits = splits.to(runtime.device)
    restored = restore_strategy(search_run, space, runtime.device, (cfg.dataset, splits)) if plan is None else None
    if bool(cfg.own.scrambled) and not (restored and getattr(restored[0], "can_scramble", lambda: False)()):
        raise UserError("own.scrambled=true scores SMASH's conditioning ablation; it needs a SMASH run with a "
                        "HyperNet (strategy.hypernet.conditioning=arch): drop own.scrambled")
    if restored is not None:
        notify(f"scoring with the {restored[0].name} strategy of {search_run.path} ({restored[0].estimator}; pass "
               "proxy=NAME for a zero-cost proxy)")
    label = ",".join(plan.columns) if plan else f"{search_run.manifest.get('strategy', 'strategy')}"
    run = RunDir.create(run_root, "rank", f"{label}_{space.name}_{cfg.dataset.name}", cfg, argv=argv,
                        overrides=overrides, device=runtime.describe(),
                        extra={"space": space.name, "dataset": cfg.dataset.name, "data": splits.sizes(),
                               "proxies": plan.columns if plan else [], "archs": len(archset),
                               "executor": executor.describe(), "torch_threads": torch.get_num_threads(),
                               "precision": (restored[1].runtime if restored else runtime).record(),
                               "search_run": str(search_run.path) if search_run else None})
    with run.running():
        started = time.perf_counter()
        costs = None
        if plan:
            values, status, costs = proxy_scores(plan, archset.archs, cfg, space, splits, runtime, executor, run)
            columns = plan.columns
            directions = {p.name: p.direction for p in plan.network + plan.combined}
        else:
            name, scores, extras = strategy_scores(restored, archset.archs, cfg, executor, run)
            columns = [STRATEGY_PREFIX + name]
            values = [{columns[0]: s, **{k if k == "degenerate" else f"{columns[0]}_{k}": v
                                         for k, v in extra.items()}}
                      for s, extra in zip(scores, extras, strict=True)]
            status = ["ok" if math.isfinite(s) else "failed" for s in scores]
            directions = {columns[0]: 1}
        if objective is not None:
            columns = _mnas_column(objective, values, status, columns, directions, archset.archs, cfg, space,
                                   splits.shape, runtime, run)
        seconds = time.perf_counter() - started
        first = columns[0]
        candidates = [Candidate(a, directions[first] * v.get(first, float("nan")), st,
                                {**v, "origin": o})
                      for a, v, st, o in zip(archset.archs, values, status, archset.origins, strict=True)]
        frame = candidates_frame(candidates, space, splits.shape, table, costs)
        ranked = rank_frame(frame)
        run.write_results(frame, ranked)
        for arch in archset.archs:
            run.write_arch(arch.arch_id, arch.to_json(description=space.describe(arch)))
        (run.path / RunDir.PARTIAL).unlink(missing_ok=True)  # archs.csv now holds every row
        truth_column = BENCH_PREFIX + cfg.benchmark.metric if table is not None else None
        run.write_json(RunDir.PROXIES, {"columns": columns, "directions": {c: directions[c] for c in columns},
                                        "ranked_by": first, "network": cfg.network,
                                        "combined": plan.members if plan else {},
                                        "batch_size": _batch_sizes(plan, cfg) if plan else {}})
        summary = {"rank_seconds": round(seconds, 2), "archs": len(frame),
                   "failed": int((frame["status"] != "ok").sum()), "ranked_by": first,
                   "best_arch_id": ranked.iloc[0]["arch_id"] if len(ranked) else None,
                   "archs_per_second": round(len(frame) / max(seconds, 1e-9), 3)}
        if "degenerate" in frame.columns:
            summary["degenerate"] = int(frame["degenerate"].fillna(0).sum())
        run.update_manifest(summary=summary)
    return RankOutcome(run, ranked, columns, truth_column, seconds, {c: directions[c] for c in columns},
                       summary["failed"], summary.get("degenerate", 0))


def _mnas_column(objective, values, status, columns, directions, archs, cfg, space, shape, runtime, run) -> list[str]:
    """Put MnasNet's reward first: `mnas` = first score column x (latency / target)^w. Latency comes from the
    latency proxy's column when it was asked for, else from latency.method (measured or table) here."""
    score_column = next((c for c in columns if c != "latency"), None)
    if score_column is None:
        raise UserError("objective=mnas rewards a score by its latency: ask for a score too, e.g. "
                        "proxy=synflow,latency, or rank a search run's strategy scores")
    if all("latency" in v for v in values):
        latency = [v["latency"] for v in values]
    else:
        by_id, how = latency_column(archs, space, shape, space.cfg[cfg.network], cfg.latency, run.path.parent.parent,
                                    runtime.device, runtime.channels_last, runtime.amp)
        latency = [by_id.get(a.arch_id, math.nan) for a in archs]
        run.update_manifest(latency=how)
    for i, (v, ms) in enumerate(zip(values, latency, strict=True)):
        v["latency"] = ms
        v["mnas"] = objective.reward(float(v.get(score_column, math.nan)), float(ms))
        if not math.isfinite(v["mnas"]) and status[i] == "ok":
            status[i] = "failed"
            v["mnas_error"] = f"no reward: {score_column}={v.get(score_column)} latency={ms} (both must be > 0)"
    directions["mnas"] = 1
    run.update_manifest(objective={"name": "mnas", "score": score_column, "target_ms": objective.target_ms,
                                   "w": objective.w, "w_below": objective.w_below})
    return ["mnas", *columns]


def _latency_table(plan: ProxyPlan, cfg: DictConfig, space, shape, runtime, archs, run: RunDir) -> dict | None:
    """latency.method=table: the run root's table for this device, extended here (before any worker starts) to
    every op at every slot of the first architectures' networks, so that workers only sum."""
    if "latency" not in [p.name for p in plan.network] or check_method(str(cfg.latency.method)) != "table":
        return None
    table = LatencyTable.cached(space, latency_settings(cfg.latency, runtime.amp), run.path.parent.parent,
                                runtime.device, runtime.channels_last)
    table.predict_many(shape, space.cfg[cfg.network], archs[:3], every_op=True)
    table.save()
    run.update_manifest(latency_table=str(table.path))
    return table.state()


def proxy_names(value) -> list[str] | None:
    if value is None:
        return None
    names = [n.strip() for n in str(value).split(",") if n.strip()]
    return names or None


def _batch_sizes(plan: ProxyPlan, cfg: DictConfig) -> dict[str, int | None]:
    """Images per batch for each network proxy: batch_size= for all, else each proxy's paper batch."""
    return {p.name: (int(cfg.batch_size) if cfg.batch_size is not None and p.needs_data else p.batch_size)
            for p in plan.network}


def proxy_batches(cfg: DictConfig, splits, runtime, batch_size: int) -> tuple[list[tuple[torch.Tensor, torch.Tensor]],
                                                                       list[list[int]]]:
    """`batches` training batches of `batch_size` images (never val or test), un-augmented: a seeded draw
    (`proxies.batch_seed`), stratified so that every class appears, as the papers score a random training batch;
    with the batches' indices into the train split, which the rank run records."""
    return drawn_batches(splits.train, splits, batch_size, int(cfg.batches), int(cfg.proxies.batch_seed), runtime)


def _batch_record(cfg: DictConfig, splits, data: dict, drawn: dict) -> dict:
    """Which training images each batch size's proxies saw: indices into the train split that `load_splits`
    builds from the run's dataset config, and each batch's images per class."""
    classes = len(splits.classes) or int(splits.train.y.max()) + 1
    return {"split": "train", "batch_seed": int(cfg.proxies.batch_seed), "batches": int(cfg.batches),
            "indices": {str(bs): idx for bs, idx in drawn.items()},
            "class_counts": {str(bs): [torch.bincount(y, minlength=classes).tolist() for _, y in data[bs]]
                             for bs in drawn}}


def proxy_scores(plan: ProxyPlan, archs, cfg: DictConfig, space, splits, runtime, executor: Executor, run: RunDir):
    """Every architecture's network proxies (chunks of architectures on the executor, rows appended to
    archs.partial.csv as chunks finish), then the combined proxies over the whole set."""
    sizes = _batch_sizes(plan, cfg)
    data, drawn = {}, {}
    for bs in sorted({b for b in sizes.values() if b is not None}):
        batches, drawn[bs] = proxy_batches(cfg, splits, runtime, bs)
        data[bs] = [(x.cpu(), y.cpu()) for x, y in batches]
    if drawn:
        run.write_json(RunDir.PROXY_BATCHES, _batch_record(cfg, splits, data, drawn))
    setup = ScoringSetup(space.name, OmegaConf.to_container(cfg.space), cfg.network, splits.shape,
                         [p.name for p in plan.network], sizes, data, int(cfg.seed), str(runtime.device),
                         runtime.channels_last, {**OmegaConf.to_container(cfg.latency), "bf16": runtime.amp},
                         _latency_table(plan, cfg, space, splits.shape, runtime, archs, run))
    failed = {**{p.name: math.nan for p in plan.network}, "params": math.nan, "flops": math.nan, "status": "failed"}
    rows = stream_chunks(executor, score_chunk, setup, archs, int(cfg.chunk), run,
                         f"scoring with {','.join(p.name for p in plan.network)}", failed)
    frame = pd.DataFrame(rows)
    for combo in plan.combined:
        members = list(plan.members[combo.name])
        directions = {m: PROXIES[m].direction for m in members}
        frame[combo.name] = combo.fn(frame[members], directions)
        bad = frame[combo.name].isna()
        frame.loc[bad, f"{combo.name}_error"] = "a member proxy failed"
        frame.loc[bad, "status"] = "failed"
    costs = {a.arch_id: ({"params": int(r["params"]), "flops": int(r["flops"])} if math.isfinite(r["params"])
                         else {"params": math.nan, "flops": math.nan}) for a, r in zip(archs, rows, strict=True)}
    sizes_only = [c for c in ("params", "flops") if c not in {p.name for p in plan.network}]
    records = frame.drop(columns=[*sizes_only, "status"]).to_dict("records")
    values = [{k: v for k, v in r.items() if not (isinstance(v, float) and math.isnan(v) and k.endswith("_error"))}
              for r in records]
    return values, frame["status"].tolist(), costs


def stream_chunks(executor: Executor, fn, setup, archs, chunk: int, run: RunDir, label: str,
                  failed_row: dict) -> list[dict]:
    """fn(setup, genotypes) over chunks of `archs` on the executor, one row per architecture, in order. Rows are
    appended to archs.partial.csv as soon as every earlier chunk is in (a killed run keeps what finished); a chunk
    that raised on every attempt gives `failed_row` plus its error for each of its architectures, counted and
    kept, never dropped."""
    tasks = [[a.genotype for a in archs[i:i + chunk]] for i in range(0, len(archs), chunk)]
    rows: list[dict | None] = [None] * len(archs)
    written = 0  # rows of archs.partial.csv so far: always a prefix of the architectures, in order
    with progress_bar(label, len(archs)) as advance:
        for index, result in executor.run(fn, setup, tasks):
            if isinstance(result, TaskFailure):
                result = [{**failed_row, "error": result.error} for _ in tasks[index]]
            rows[index * chunk:index * chunk + len(result)] = result
            advance(len(result))
            ready = written
            while ready < len(rows) and rows[ready] is not None:
                ready += 1
            if ready > written:
                part = pd.DataFrame([{"arch_id": a.arch_id, **r} for a, r in zip(archs[written:ready],
                                                                                  rows[written:ready], strict=True)])
                run.append_csv(RunDir.PARTIAL, part)
                written = ready
    return rows


def restore_strategy(search_run: RunDir, space, device: torch.device,
                     loaded: tuple[DictConfig, object] | None = None) -> tuple[Strategy, SearchContext]:
    """The search run's strategy with its saved state, and a context with the run's own config, data and
    precision (memory format, bf16) on the device this command runs on. `loaded`: a dataset config and its splits
    already in memory, used when the run's dataset config is the same (rank inherits it; decoding CIFAR's JPEGs
    twice costs seconds). UserError (before any rank run exists) when the run has no estimator of its own, no
    saved state, or searched another space."""
    run_cfg = search_run.config
    strategy_cls = strategy_class(run_cfg.strategy.name)
    if strategy_cls.estimator is None:
        raise UserError(f"the {run_cfg.strategy.name} strategy has no score of its own (its score trains every "
                        "architecture); rank with a proxy instead, e.g. proxy=synflow or proxy=params")
    run_space = get_space(run_cfg.space.name, run_cfg.space)
    if run_space.name != space.name:
        raise UserError(f"the search run searched space '{run_space.name}'; rank its cells with "
                        f"space={run_space.name} (its estimator scores no other space)")
    ckpt_path = search_run.checkpoint(RunDir.STRATEGY_CKPT)
    if not ckpt_path.is_file():
        raise UserError(f"{search_run.path} has no checkpoints/strategy.pt; pass proxy=NAME or another search run")
    blob = load_checkpoint(ckpt_path)
    strategy = strategy_cls(run_cfg.strategy)
    strategy.load_state_dict(blob.get("state", {}))
    run_cfg = OmegaConf.merge(run_cfg, {"device": {"type": str(device)}})
    generator = seed_everything(int(run_cfg.seed))
    same = loaded is not None and _plain(loaded[0]) == _plain(run_cfg.dataset)
    splits = loaded[1] if same else load_splits(run_cfg.dataset)
    runtime = resolve(run_cfg.device, strategy_cls.workload, splits.shape, run_space.name)
    splits = splits.to(runtime.device)
    return strategy, SearchContext(run_cfg, run_space, splits, runtime, generator, run=None)


def _plain(node: DictConfig):
    return OmegaConf.to_container(node, resolve=True)


def strategy_scores(restored: tuple[Strategy, SearchContext], archs, cfg: DictConfig, executor: Executor,
                    run: RunDir) -> tuple[str, list[float], list[dict]]:
    """The search run's own score for every architecture: on the executor in chunks for an estimator that
    prepares its inputs once (SMASH, SNAS), in this process otherwise (PNAS's predictor: microseconds a cell)."""
    strategy, ctx = restored
    if not hasattr(strategy, "score_prepared"):
        scores, extras = strategy.score_details(archs, ctx)
        return strategy.name, [float(s) for s in scores], extras
    val_images = cfg.own.val_images
    setup = make_setup(strategy, ctx, None if val_images is None else int(val_images), bool(cfg.own.scrambled))
    run.update_manifest(own_score={"estimator": strategy.estimator, "val_images": sum(len(y) for _, y in
                                                                                       setup.inputs["val"])})
    rows = stream_chunks(executor, score_strategy_chunk, setup, archs, int(cfg.chunk), run,
                         f"{strategy.name} scores", {"score": math.nan, "degenerate": math.nan})
    scores = [float(r["score"]) for r in rows]
    extras = [{k: v for k, v in r.items() if k != "score"} for r in rows]
    return strategy.name, scores, extras
