"""`nas rank`: score a set of architectures with proxies or a search run's strategy; write a rank run."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig

from nascli.archfile import load_checkpoint
from nascli.archset import load_arch_set
from nascli.benchmark import open_table
from nascli.commands.search import BENCH_PREFIX, candidates_frame, rank_frame
from nascli.data import load_splits
from nascli.device import resolve, seed_everything
from nascli.errors import UserError
from nascli.progress import progress_bar
from nascli.proxies import Proxy, get_proxies
from nascli.rundir import RunDir
from nascli.spaces.base import get_space
from nascli.strategies.base import Candidate, SearchContext, strategy_class
from nascli.train import make_loader

STRATEGY_PREFIX = "strategy_"  # column of a strategy's own score, e.g. strategy_snas


@dataclass
class RankOutcome:
    run: RunDir
    ranked: pd.DataFrame
    columns: list[str]  # the score columns, first one ranks
    truth_column: str | None
    seconds: float


@dataclass
class RankSources:
    refs: list[str]  # what to rank (run dirs, arch.json or CSV files)
    search_run: RunDir | None  # whose strategy scores, when no proxy= is given
    inherited: list[str]  # space/dataset overrides taken from the first run given
    defaulted: bool  # no source was given: the latest search run was taken


def resolve_sources(refs: list[str], overrides: list[str], sample: int | None, run_root: Path) -> RankSources:
    """`latest` and no source at all mean the latest search run; a run given lends its space and dataset."""
    from nascli.commands.retrain import inherited_overrides

    defaulted = False
    if refs == ["latest"] and not Path("latest").exists():
        refs = [str(RunDir.latest(run_root, "search").path)]
    if not refs and sample is None:
        refs, defaulted = [str(RunDir.latest(run_root, "search").path)], True
    run_dirs = [RunDir.open(r) for r in refs if Path(r).is_dir()]
    search_run = next((r for r in run_dirs if r.manifest.get("kind") == "search"), None)
    inherited = inherited_overrides(str(run_dirs[0].path), overrides, ("space", "dataset"))[0] if run_dirs else []
    return RankSources(refs, search_run, inherited, defaulted)


def run_rank(cfg: DictConfig, *, refs: list[str], sample: int | None, search_run: RunDir | None,
             run_root: Path, argv: list[str], overrides: list[str]) -> RankOutcome:
    space = get_space(cfg.space.name, cfg.space)
    table = open_table(cfg.benchmark, space)
    if cfg.network not in ("retrain", "search"):
        raise UserError(f"network={cfg.network} is not a size; use network=retrain or network=search")
    if cfg.proxy is None and search_run is None:
        raise UserError("nothing to score with: pass proxy=NAME (e.g. proxy=synflow) or a search run directory")
    proxies = get_proxies(cfg.proxy) if cfg.proxy is not None else []
    archset = load_arch_set(refs, space, sample, int(cfg.seed))
    runtime = resolve(cfg.device)
    seed_everything(int(cfg.seed))
    splits = load_splits(cfg.dataset).to(runtime.device)
    label = ",".join(p.name for p in proxies) or f"{search_run.manifest.get('strategy', 'strategy')}"
    run = RunDir.create(run_root, "rank", f"{label}_{space.name}_{cfg.dataset.name}", cfg, argv=argv,
                        overrides=overrides, device=runtime.describe(),
                        extra={"space": space.name, "dataset": cfg.dataset.name, "data": splits.sizes(),
                               "proxies": [p.name for p in proxies], "archs": len(archset),
                               "search_run": str(search_run.path) if search_run else None})
    with run.running():
        started = time.perf_counter()
        if proxies:
            values, status = proxy_scores(proxies, archset.archs, cfg, space, splits, runtime)
            columns = [p.name for p in proxies]
            directions = {p.name: p.direction for p in proxies}
        else:
            name, scores, extras = strategy_scores(search_run, archset.archs, space, runtime)
            columns = [STRATEGY_PREFIX + name]
            values = [{columns[0]: s, **{f"{columns[0]}_{k}": v for k, v in extra.items()}}
                      for s, extra in zip(scores, extras, strict=True)]
            status = ["ok" if math.isfinite(s) else "failed" for s in scores]
            directions = {columns[0]: 1}
        seconds = time.perf_counter() - started
        first = columns[0]
        candidates = [Candidate(a, directions[first] * v.get(first, float("nan")), st,
                                {**v, "origin": o})
                      for a, v, st, o in zip(archset.archs, values, status, archset.origins, strict=True)]
        frame = candidates_frame(candidates, space, splits.shape, table)
        ranked = rank_frame(frame)
        run.write_csv("archs.csv", frame)
        run.write_csv("ranked.csv", ranked)
        for arch in archset.archs:
            run.write_json(f"archs/{arch.arch_id}.json", arch.to_json(description=space.describe(arch)))
        truth_column = BENCH_PREFIX + cfg.benchmark.metric if table is not None else None
        run.write_json("proxies.json", {"columns": columns, "directions": directions, "ranked_by": first,
                                        "network": cfg.network})
        run.update_manifest(summary={"rank_seconds": round(seconds, 2), "archs": len(frame),
                                     "failed": int((frame["status"] != "ok").sum()), "ranked_by": first,
                                     "best_arch_id": ranked.iloc[0]["arch_id"] if len(ranked) else None})
    return RankOutcome(run, ranked, columns, truth_column, seconds)


def proxy_batches(cfg: DictConfig, splits, runtime) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first `batches` training batches (never val or test), un-augmented."""
    loader = make_loader(splits.train, splits, int(cfg.batch_size), runtime, train=False)
    out = []
    for x, y in loader:
        out.append((x, y))
        if len(out) == int(cfg.batches):
            break
    return out


def proxy_scores(proxies: list[Proxy], archs, cfg: DictConfig, space, splits, runtime):
    batches = proxy_batches(cfg, splits, runtime) if any(p.needs_data for p in proxies) else []
    size = cfg.space.retrain if cfg.network == "retrain" else cfg.space.search
    values, status = [], []
    with progress_bar(f"scoring with {','.join(p.name for p in proxies)}", len(archs)) as advance:
        for arch in archs:
            # Every network starts from the same seed, so a score depends on the architecture alone.
            torch.manual_seed(int(cfg.seed))
            model = space.build(arch, splits.shape, size).to(runtime.device)
            fresh = {k: v.clone() for k, v in model.state_dict().items()}
            row, ok = {}, True
            for proxy in proxies:
                model.load_state_dict(fresh)  # a proxy may update BN statistics or flip signs
                try:
                    value = float(proxy.fn(model, batches, splits.shape))
                except (RuntimeError, torch.linalg.LinAlgError) as e:
                    row[f"{proxy.name}_error"] = str(e).splitlines()[0][:200]
                    value = float("nan")
                # -inf is a legitimate worst score (naswot of a cell whose output is constant); NaN is a failure.
                if math.isnan(value):
                    ok = False
                row[proxy.name] = value
            values.append(row)
            status.append("ok" if ok else "failed")
            advance(1)
    return values, status


def strategy_scores(search_run: RunDir, archs, space, runtime) -> tuple[str, list[float], list[dict]]:
    """The search run's own proxy (its strategy's score()) from its saved state."""
    run_cfg = search_run.config
    ckpt_path = search_run.path / "checkpoints" / "strategy.pt"
    if not ckpt_path.is_file():
        raise UserError(f"{search_run.path} has no checkpoints/strategy.pt; pass proxy=NAME or another search run")
    blob = load_checkpoint(ckpt_path)
    strategy = strategy_class(run_cfg.strategy.name)(run_cfg.strategy)
    strategy.load_state_dict(blob.get("state", {}))
    run_space = get_space(run_cfg.space.name, run_cfg.space)
    if run_space.name != space.name:
        raise UserError(f"the search run searched space '{run_space.name}'; rank its architectures with "
                        f"space={run_space.name}")
    generator = seed_everything(int(run_cfg.seed))
    splits = load_splits(run_cfg.dataset).to(runtime.device)
    ctx = SearchContext(run_cfg, run_space, splits, runtime, generator, run=None)
    scores, extras = strategy.score_details(archs, ctx)
    return run_cfg.strategy.name, [float(s) for s in scores], extras
