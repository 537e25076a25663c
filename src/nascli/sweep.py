"""`nas search -m KEY=a,b seed='range(0,100)' ...`: one command, the Cartesian product of the swept values.

The grammar is Hydra's: its override parser reads comma lists, `range()`, `glob()` and quoting, and its basic
sweeper's `split_arguments` builds the grid, so a sweep expands exactly as `@hydra.main`'s multirun would (the
app composes with the compose API, where multirun itself is not available). In a sweep a comma list is a sweep;
a list value is written in brackets (`rank_mean=[synflow,params]`).

Each job is a normal search run, under the sweep's folder (`jobs/<job>/search/<run>`, its latency-table cache
shared with the run root's). The sweep folder `runs/sweep/<stamp>/` holds `sweep.yaml` (the command and the
grid) and `jobs.csv` (each job's overrides, run directory, status, wall time and headline result), rewritten
as each job ends. Jobs go through the executor (`executor.workers`: a pool of single-threaded workers on the
local machine, or Ray, or SLURM); inside a job `executor.workers=1`: a job never starts a pool of its own.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
import yaml

from nascli.errors import UserError
from nascli.rundir import RunDir

SWEEP_FILE, JOBS_FILE = "sweep.yaml", "jobs.csv"
MAX_JOBS_KEY, DEFAULT_MAX_JOBS = "sweep.max_jobs", 10_000
JOB_COLUMNS = ["job", "overrides", "status", "run_dir", "wall_s", "headline_key", "headline", "error"]


@dataclass
class SweepPlan:
    command: str
    overrides: list[str]  # as given (with the sweep syntax)
    grid: dict[str, list[str]]  # swept key -> its values, in order
    jobs: list[list[str]]  # each job's plain overrides
    args: dict = field(default_factory=dict)  # what is not an override: rank's sources/sample/every, retrain's arch


COMMANDS = ("search", "rank", "retrain")


def plan_sweep(command: str, overrides: list[str], config_dir: Path | None = None, args: dict | None = None,
               run_root: Path = Path("runs")) -> SweepPlan:
    """Expand the overrides into jobs; every UserError (grammar, no swept value, too many jobs, an unknown key or
    value in any job) comes here, before any job starts."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    if command not in COMMANDS:
        raise UserError(f"{command} -m is not a sweep; sweeps run {', '.join(COMMANDS)}")
    args = dict(args or {})
    rest, max_jobs = _max_jobs(overrides)
    parsed = _parse(rest, config_dir)
    grid = {o.get_key_element(): list(o.sweep_string_iterator()) for o in parsed if o.is_sweep_override()}
    if not grid:
        raise UserError("-m sweeps comma lists, range() or glob(), and no override has one; e.g. seed=0,1,2 or "
                        "seed='range(0,10)' (or drop -m for one run)")
    total = math.prod(len(v) for v in grid.values())
    if total > max_jobs:
        raise UserError(f"the grid has {total:,} jobs, more than {MAX_JOBS_KEY}={max_jobs:,}; raise it with "
                        f"{MAX_JOBS_KEY}={total} if you mean it")
    jobs = BasicSweeper.split_arguments(parsed, None)[0]
    # A job's config depends on its overrides; the seed cannot make one invalid, so each distinct setting of the
    # other keys is composed once (3 strategies x 100 seeds: 3 compositions).
    checked = set()
    for job in jobs:
        key = tuple(o for o in job if o.split("=", 1)[0] != "seed")
        if key not in checked:
            checked.add(key)
            try:
                compose_job(command, job, args, config_dir, run_root)
            except UserError as e:
                raise UserError(f"job {' '.join(job)}: {e}") from None
    return SweepPlan(command, list(overrides), grid, jobs, args)


def compose_job(command: str, job: list[str], args: dict, config_dir, run_root: Path):
    """A job's config, composed as its command composes it (a rank job inherits its source run's space and data,
    a retrain job its architecture's)."""
    from nascli.config import compose

    if command == "rank":
        from nascli.commands.rank import resolve_sources

        found = resolve_sources(list(args.get("sources") or []), job, args.get("sample"), Path(run_root),
                                bool(args.get("every")))
        cfg = compose("rank", found.inherited + job, config_dir)
        if cfg.proxy is not None:  # a proxy name is a value, not a config group: check it here, not in the job
            from nascli.commands.rank import proxy_names
            from nascli.proxies.base import load_proxies, plan_proxies

            load_proxies()
            plan_proxies(cfg.proxy, proxy_names(cfg.rank_mean), proxy_names(cfg.vote))
        return cfg
    if command == "retrain":
        from nascli.commands.retrain import plan_retrain

        return plan_retrain(args["arch"], job, top=None, sample=None, seeds=None, run_root=Path(run_root),
                            config_dir=config_dir).jobs[0][1]
    return compose(command, job, config_dir)


def _max_jobs(overrides: list[str]) -> tuple[list[str], int]:
    rest, limit = [], DEFAULT_MAX_JOBS
    for o in overrides:
        if o.startswith(MAX_JOBS_KEY + "="):
            value = o.split("=", 1)[1]
            if not value.isdigit() or int(value) < 1:
                raise UserError(f"{o} is not a job count; write {MAX_JOBS_KEY}=N with N >= 1")
            limit = int(value)
        else:
            rest.append(o)
    return rest, limit


def _parse(overrides: list[str], config_dir: Path | None):
    """Hydra's own parse, with its config loader so that glob() sees the config groups' options."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from nascli.config import conf_dir

    extra = []
    if config_dir is not None:
        extra = [f"hydra.searchpath=[file://{Path(config_dir).expanduser().resolve()}]"]
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3", job_name="nas"):
            parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
            return [o for o in parser.parse_overrides(overrides + extra) if o.get_key_element() != "hydra.searchpath"]
    except HydraException as e:
        message = " ".join(str(e).split())
        raise UserError(f"cannot read the sweep: {message[:300]}; see Hydra's override grammar "
                        "(a,b  range(0,10)  glob(*))") from None


# -- running ------------------------------------------------------------------------------------------------
@dataclass
class SweepOutcome:
    folder: Path
    jobs: pd.DataFrame
    failed: int
    report: object | None = None  # reporting.sweep_page.SweepReport, once written (.page, .summary, .metric)


def new_sweep_folder(run_root: Path) -> Path:
    import secrets

    folder = Path(run_root) / "sweep" / f"{datetime.now():%Y-%m-%d_%H-%M-%S}_{secrets.token_hex(2)}"
    folder.mkdir(parents=True)
    return folder


def run_sweep(plan: SweepPlan, *, run_root: Path, argv: list[str], config_dir: Path | None = None,
              folder: Path | None = None) -> SweepOutcome:
    """Run (or, with `folder`, resume) a sweep: finished jobs are kept, an interrupted job is resumed from its
    checkpoint, the rest run; a job that fails is marked failed with its one-line error and the rest go on."""
    from nascli.atomic import write_text
    from nascli.executors import make_executor
    from nascli.progress import progress_bar

    folder = folder or new_sweep_folder(run_root)
    if not (folder / SWEEP_FILE).is_file():
        write_text(folder / SWEEP_FILE, yaml.safe_dump({
            "format": "nascli.sweep/1", "command": plan.command, "argv": list(argv), "overrides": plan.overrides,
            "grid": plan.grid, "args": plan.args, "jobs": len(plan.jobs), "job_overrides": plan.jobs,
            "run_root": str(Path(run_root).resolve()),
            "config_dir": str(Path(config_dir).resolve()) if config_dir else None}, sort_keys=False))
    table = _job_table(folder, plan)
    todo = []
    for i, job in enumerate(plan.jobs):
        if table.at[i, "status"] == "done":
            continue
        root = _job_root(folder, i, run_root)
        run = _run_of(root, plan.command)
        if run is not None and run.status == "done":
            table.loc[i, ["status", "run_dir"]] = ["done", str(run.path)]
            table.loc[i, ["headline_key", "headline"]] = headline(run)
            continue
        # An interrupted search or retrain continues from its checkpoint; a rank run starts again (it has none).
        resume = (str(run.path) if run is not None and run.status == "interrupted" and plan.command != "rank"
                  else None)
        todo.append({"job": i, "overrides": [*job, "executor.workers=1"], "root": str(root), "resume": resume})
    _write(folder, table)
    first = compose_job(plan.command, plan.jobs[0], plan.args, config_dir, run_root)
    executor = make_executor(first.executor, first.device)
    shared = {"command": plan.command, "config_dir": str(config_dir) if config_dir else None, "argv": list(argv),
              "folder": str(folder), "args": plan.args, "run_root": str(run_root)}
    with progress_bar(f"sweep ({len(plan.jobs)} jobs)", len(plan.jobs)) as advance:
        advance(len(plan.jobs) - len(todo))
        for n, result in executor.run(sweep_job, shared, todo):
            i = todo[n]["job"]
            if not isinstance(result, dict):  # TaskFailure: the job crashed (a bug, not bad input)
                result = {"status": "failed", "error": result.error}
            for key, value in result.items():
                table.at[i, key] = value
            _write(folder, table)
            advance(1, failed=int((table["status"] == "failed").sum()))
    return SweepOutcome(folder, table, int((table["status"] == "failed").sum()))


def sweep_job(shared: dict, task: dict) -> dict:
    """One job, in whatever process the executor runs it: a normal run under the job's own root."""
    started = time.perf_counter()
    try:
        run = _run_job(shared, task, Path(task["root"]))
    except UserError as e:
        return {"status": "failed", "error": str(e), "wall_s": round(time.perf_counter() - started, 2)}
    key, value = headline(run)
    return {"status": "done", "run_dir": str(run.path), "wall_s": round(time.perf_counter() - started, 2),
            "headline_key": key, "headline": value, "error": ""}


def _run_job(shared: dict, task: dict, root: Path) -> RunDir:
    command, args, config_dir = shared["command"], shared.get("args") or {}, shared["config_dir"]
    argv = [*shared["argv"], f"[sweep job {task['job']}]"]
    if command == "search":
        from nascli.commands.search import resume_search, run_search
        from nascli.config import compose

        if task.get("resume"):
            return resume_search(task["resume"], [], run_root=root).run
        cfg = compose("search", task["overrides"], config_dir)
        return run_search(cfg, run_root=root, argv=argv, overrides=task["overrides"]).run
    if command == "retrain":
        from nascli.commands.retrain import plan_retrain, resume_retrain, run_plan

        if task.get("resume"):
            return resume_retrain(RunDir.open(task["resume"]), []).run
        plan = plan_retrain(args["arch"], task["overrides"], top=None, sample=None, seeds=None,
                            run_root=Path(shared["run_root"]), config_dir=config_dir)
        return run_plan(plan, run_root=root, argv=argv, overrides=task["overrides"])[0].run
    from nascli.commands.rank import resolve_sources, run_rank
    from nascli.config import compose

    found = resolve_sources(list(args.get("sources") or []), task["overrides"], args.get("sample"),
                            Path(shared["run_root"]), bool(args.get("every")))
    cfg = compose("rank", found.inherited + task["overrides"], config_dir)
    return run_rank(cfg, refs=found.refs, sample=args.get("sample"), search_run=found.search_run, run_root=root,
                    argv=argv, overrides=task["overrides"], every=bool(args.get("every"))).run


def headline(run: RunDir) -> tuple[str, float | None]:
    """A run's result in one number. A search: the protocol's final incumbent (the reported metric of the best
    cell by fitness), else the benchmark truth of the chosen cell, else its score. A retrain: test accuracy. A
    rank run: Kendall's tau-b of its ranking column against the benchmark truth, else the archs it scored."""
    import json

    run = RunDir.open(run.path)
    summary = run.manifest.get("summary") or {}
    kind = run.manifest.get("kind")
    if kind == "retrain":
        result = json.loads((run.path / RunDir.RESULT).read_text())
        return "test_acc", result.get("test_acc")
    if kind == "rank":
        return _rank_headline(run, summary)
    if "protocol" in summary:
        return f"incumbent ({summary['protocol']['metric']})", summary["protocol"]["final_incumbent"]
    for metric, value in (summary.get("best_truth") or {}).items():
        return metric, value
    return "best_score", summary.get("best_score")


def _rank_headline(run: RunDir, summary: dict) -> tuple[str, float | None]:
    import json

    from scipy import stats

    proxies = json.loads((run.path / RunDir.PROXIES).read_text())
    first = proxies["ranked_by"]
    frame = run.read_frame(RunDir.ARCHS)
    truth = next((c for c in frame.columns if c == "bench_" + str(run.config.benchmark.metric)), None)
    if truth is None:
        return "archs", summary.get("archs")
    # Every row counts: a cell that failed or is degenerate carries its column's worst value, not a dropped row.
    tau = stats.kendalltau(frame[first] * proxies["directions"].get(first, 1), frame[truth], variant="b")
    return f"kendall_tau ({first} vs {truth})", float(tau.statistic)


def _job_root(folder: Path, job: int, run_root: Path) -> Path:
    """Job `job`'s run root; its latency-table cache is the run root's, so jobs do not time the table again."""
    root = folder / "jobs" / f"{job:05d}"
    root.mkdir(parents=True, exist_ok=True)
    shared_cache = Path(run_root) / ".cache"
    shared_cache.mkdir(parents=True, exist_ok=True)
    link = root / ".cache"
    if not link.exists():
        os.symlink(shared_cache.resolve(), link)
    return root


def _run_of(root: Path, command: str) -> RunDir | None:
    base = root / command
    runs = sorted(p for p in base.glob("*") if (p / RunDir.MANIFEST).is_file()) if base.is_dir() else []
    return RunDir.open(runs[-1]) if runs else None


def _job_table(folder: Path, plan: SweepPlan) -> pd.DataFrame:
    path = folder / JOBS_FILE
    if path.is_file():
        table = read_jobs(folder)
        table["status"] = table["status"].where(table["status"] == "done", "pending")
        return table.astype({"run_dir": object, "error": object, "headline_key": object})
    return pd.DataFrame({"job": range(len(plan.jobs)), "overrides": [" ".join(j) for j in plan.jobs],
                         "status": "pending", "run_dir": "", "wall_s": math.nan, "headline_key": "",
                         "headline": math.nan, "error": ""}, columns=JOB_COLUMNS).astype(
        {"run_dir": object, "error": object, "headline_key": object})


def _write(folder: Path, table: pd.DataFrame) -> None:
    from nascli.atomic import write_csv

    write_csv(folder / JOBS_FILE, table)


def open_sweep(ref: str | Path) -> tuple[Path, dict]:
    """A sweep folder and its sweep.yaml; UserError for anything that is not one."""
    folder = Path(ref).expanduser()
    if not (folder / SWEEP_FILE).is_file():
        raise UserError(f"{folder} is not a sweep (no {SWEEP_FILE}); pass a folder under runs/sweep/")
    return folder, yaml.safe_load((folder / SWEEP_FILE).read_text())


def read_jobs(folder: Path) -> pd.DataFrame:
    path = Path(folder) / JOBS_FILE
    if not path.is_file():
        raise UserError(f"{folder} has no {JOBS_FILE}: the sweep never started a job; run it again with "
                        f"nas search --resume {folder}")
    return pd.read_csv(path, dtype={"overrides": str, "run_dir": str, "error": str, "headline_key": str})


def is_sweep(ref: str | Path) -> bool:
    return (Path(ref).expanduser() / SWEEP_FILE).is_file()
