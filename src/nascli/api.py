"""nascli from Python (a notebook, a script): the commands as functions, with the CLI's run directories and
validation. Bad input raises `nascli.UserError`, carrying the one line the CLI would print.

    import nascli
    run = nascli.search(strategy="random", dataset="digits", budget="smoke")
    run.ranked.head()                                   # the ranking, as a DataFrame
    trained = nascli.retrain(run.best, **{"budget.epochs": 5})
    folder = nascli.export(trained.path, format="pt2")  # model.pt2 + export.json

Settings are Hydra overrides: keyword arguments (`dataset="digits"`, `**{"budget.epochs": 5}`, or with `__` for
the dot: `budget__epochs=5`) or strings (`overrides=["strategy=snas"]`); strings come first.
"""

from __future__ import annotations

import functools
import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from omegaconf import DictConfig
from torch import nn

from nascli.arch import Arch
from nascli.errors import UserError
from nascli.rundir import RunDir

F = TypeVar("F", bound=Callable[..., Any])

PathLike = str | Path


@dataclass
class Run:
    """One run directory, read lazily: every property reads its file when asked."""

    path: Path
    outcome: Any = field(default=None, repr=False)  # the command's in-memory result, when this call made the run

    @property
    def manifest(self) -> dict:
        return RunDir.open(self.path).manifest

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def config(self) -> DictConfig:
        return RunDir.open(self.path).config

    @property
    def archs(self) -> pd.DataFrame | None:
        """archs.csv: every architecture the run scored (search, rank), None for other kinds."""
        return self._csv(RunDir.ARCHS)

    @property
    def ranked(self) -> pd.DataFrame | None:
        """ranked.csv: the same rows, best first."""
        return self._csv(RunDir.RANKED)

    @property
    def best(self) -> Arch | None:
        """The run's arch.json (a search's best, a retrain's architecture)."""
        from nascli.arch_io import read_arch_file

        path = self.path / RunDir.ARCH
        return read_arch_file(path) if path.is_file() else None

    @property
    def result(self) -> dict | None:
        """result.json (retrain) or correlation.json (correlate)."""
        for name in (RunDir.RESULT, RunDir.CORRELATION):
            if (self.path / name).is_file():
                return json.loads((self.path / name).read_text())
        return None

    @property
    def metrics(self) -> pd.DataFrame:
        """metrics.jsonl, one row per logged event (epochs, timings)."""
        path = self.path / RunDir.METRICS
        if not path.is_file() or path.stat().st_size == 0:
            return pd.DataFrame()
        return pd.read_json(path, lines=True)

    def _csv(self, name: str) -> pd.DataFrame | None:
        from nascli.rundir import read_results_csv

        path = self.path / name
        return read_results_csv(path) if path.is_file() else None


def _not_while_a_worker_imports_the_script(command: F) -> F:
    """A worker process of the local pool imports the caller's script before it takes tasks: an nascli call at
    the script's top level would run the whole command again there, writing run directories of its own. That
    worker stops quietly (exit 2); the parent's pool then reports the missing `__main__` guard in one line."""

    @functools.wraps(command)
    def guarded(*args, **kwargs):
        from nascli.executors.local import importing_main_in_a_worker

        if importing_main_in_a_worker():
            raise SystemExit(2)
        return command(*args, **kwargs)

    return guarded  # type: ignore[return-value]


def load_run(path: PathLike) -> Run:
    """A finished or running run directory; UserError when `path` is not one."""
    return Run(RunDir.open(Path(path).expanduser()).path)


def as_overrides(overrides: Sequence[str] = (), settings: dict[str, Any] | None = None) -> list[str]:
    """Hydra override strings from strings and keyword settings (`a__b=1` and `{"a.b": 1}` both mean a.b=1)."""
    out = list(overrides)
    for key, value in (settings or {}).items():
        out.append(f"{key.replace('__', '.')}={_hydra_value(value)}")
    return out


def _hydra_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    if isinstance(value, Path):
        return str(value)
    return str(value)


@_not_while_a_worker_imports_the_script
def search(*, run_root: PathLike = "runs", config_dir: PathLike | None = None, resume: str | None = None,
           overrides: Sequence[str] = (), argv: list[str] | None = None,
           notify: Callable[[str], None] | None = None, **settings: Any) -> Run:
    """`nas search`: search a space with a strategy; the run holds the ranking and the best arch.json."""
    from nascli.commands.search import resume_search, run_search
    from nascli.config import compose

    items = as_overrides(overrides, settings)
    if resume is not None:
        out = resume_search(resume, items, run_root=Path(run_root), notify=notify or _quiet)
    else:
        cfg = compose("search", items, config_dir)
        out = run_search(cfg, run_root=Path(run_root), argv=argv or _argv("search", items), overrides=items)
    return Run(out.run.path, out)


@_not_while_a_worker_imports_the_script
def sweep(command: str = "search", *, resume: PathLike | None = None, run_root: PathLike = "runs",
          config_dir: PathLike | None = None, overrides: Sequence[str] = (), argv: list[str] | None = None,
          sources: Sequence[PathLike] = (), sample: int | None = None, every: bool = False,
          arch: PathLike | None = None, **settings: Any):
    """`nas search|rank|retrain -m`: one run per point of the grid the overrides' comma lists, range() and glob()
    span (`seed="range(0,100)"`, `strategy="random,evolution"`); or, with `resume`, finish a killed sweep. A rank
    sweep takes `sources`/`sample`/`every` as `nas rank` does, a retrain sweep its `arch`. Returns the sweep's
    outcome (.folder, .jobs as a DataFrame, .failed, .report: the page and its summary)."""
    from nascli.sweep import SweepPlan, open_sweep, plan_sweep, run_sweep

    if resume is not None:
        folder, doc = open_sweep(resume)
        plan = SweepPlan(doc["command"], doc["overrides"], doc["grid"], doc["job_overrides"], doc.get("args") or {})
        out = run_sweep(plan, run_root=Path(doc["run_root"]), argv=doc["argv"], config_dir=doc.get("config_dir"),
                        folder=folder)
    else:
        items = as_overrides(overrides, settings)
        args = ({"sources": [str(s) for s in sources], "sample": sample, "every": every} if command == "rank"
                else {"arch": str(arch)} if command == "retrain" else {})
        if command == "retrain" and arch is None:
            raise UserError("nas retrain -m needs the architecture to retrain: nas retrain -m ARCH seed=0,1,2")
        plan = plan_sweep(command, items, config_dir, args, Path(run_root))
        out = run_sweep(plan, run_root=Path(run_root), argv=argv or _argv(f"{command} -m", items),
                        config_dir=config_dir)
    # The experiment's page comes with it (summary.csv, pairwise.csv, anytime curves): `nas report` rewrites it.
    from nascli.commands.report import sweep_report

    out.report = sweep_report(str(out.folder))
    return out


@_not_while_a_worker_imports_the_script
def retrain(arch: PathLike | Arch, *, seeds: Sequence[int] | None = None, run_root: PathLike = "runs",
            config_dir: PathLike | None = None, overrides: Sequence[str] = (), **settings: Any) -> Run | list[Run]:
    """`nas retrain`: train an architecture from scratch (an Arch, arch.json, run directory, checkpoint or
    preset such as "darts:DARTS_V2"); one Run, or one per seed when `seeds` are given."""
    from nascli.commands.retrain import plan_retrain, run_plan

    items = as_overrides(overrides, settings)
    with _arch_ref(arch) as ref:
        plan = plan_retrain(ref, items, top=None, sample=None, seeds=",".join(map(str, seeds)) if seeds else None,
                            run_root=Path(run_root), config_dir=config_dir)
        outcomes = run_plan(plan, run_root=Path(run_root), argv=_argv("retrain", [ref, *items]), overrides=items)
    runs = [Run(o.run.path, o) for o in outcomes]
    return runs if seeds else runs[0]


@_not_while_a_worker_imports_the_script
def rank(*sources: PathLike, sample: int | None = None, every: bool = False, run_root: PathLike = "runs",
         config_dir: PathLike | None = None, overrides: Sequence[str] = (), argv: list[str] | None = None,
         notify: Callable[[str], None] | None = None, **settings: Any) -> Run:
    """`nas rank`: score architectures (run directories, arch.json or CSV files, `sample` drawn from the space,
    `every` cell of a finite space) with proxies (`proxy="synflow"`) or a search run's own estimator."""
    from nascli.commands.rank import resolve_sources, run_rank
    from nascli.config import compose

    items = as_overrides(overrides, settings)
    refs = [str(s) for s in sources]
    found = resolve_sources(refs, items, sample, Path(run_root), every)
    if found.defaulted and notify:
        notify(f"ranking the architectures of the latest search run {found.refs[0]}")
    cfg = compose("rank", found.inherited + items, config_dir)
    out = run_rank(cfg, refs=found.refs, sample=sample, search_run=found.search_run, run_root=Path(run_root),
                   argv=argv or _argv("rank", [*refs, *items]), overrides=items, every=every,
                   notify=notify or _quiet)
    return Run(out.run.path, out)


@_not_while_a_worker_imports_the_script
def correlate(source: PathLike | None = None, *, run_root: PathLike = "runs", config_dir: PathLike | None = None,
              overrides: Sequence[str] = (), argv: list[str] | None = None, **settings: Any) -> Run:
    """`nas correlate`: Kendall tau, Spearman rho and Pearson r (with intervals) of scores against the truth. A
    sweep of rank runs as the source: each job correlated, τ per group with intervals (a SweepCorrelation)."""
    from nascli.commands.correlate import run_correlate
    from nascli.config import compose
    from nascli.sweep import is_sweep

    items = as_overrides(overrides, settings)
    if source is not None and is_sweep(source):
        from nascli.sweep_correlation import correlate_sweep

        return correlate_sweep(str(source), items, config_dir, argv)
    cfg = compose("correlate", items, config_dir)
    out = run_correlate(cfg, source=str(source) if source is not None else None, run_root=Path(run_root),
                        argv=argv or _argv("correlate", [*([str(source)] if source else []), *items]),
                        overrides=items)
    return Run(out.run.path, out)


@_not_while_a_worker_imports_the_script
def report(*runs: PathLike, run_root: PathLike = "runs") -> list[Path]:
    """`nas report`: report.html in each run (the latest run when none is named), and a comparison page."""
    from nascli.commands.report import run_report

    out = run_report([str(r) for r in runs], run_root=Path(run_root))
    return [*out.pages, *([out.comparison] if out.comparison else [])]


@_not_while_a_worker_imports_the_script
def export(arch: PathLike | Arch, format: str = "pt2", *, out: PathLike | None = None, init: bool = False,
           force: bool = False, run_root: PathLike = "runs", config_dir: PathLike | None = None,
           overrides: Sequence[str] = (), argv: list[str] | None = None, **settings: Any) -> Path:
    """`nas export`: the model in `format` (pt2, onnx, state_dict, genotype) plus export.json, in a new folder;
    returns the folder."""
    from nascli.commands.export import run_export

    items = as_overrides(overrides, settings)
    with _arch_ref(arch) as ref:
        result = run_export(ref, format, out=Path(out) if out is not None else None, init=init, force=force,
                            overrides=items, run_root=Path(run_root), config_dir=config_dir,
                            argv=argv or _argv("export", [ref, "--format", format, *items]))
    return result.folder


def build_model(arch: PathLike | Arch, num_classes: int = 10, *, in_channels: int = 3, height: int = 32,
                width: int = 32, size: str = "retrain", **net: Any) -> nn.Module:
    """The network of `arch` as an untrained nn.Module, at the space's retrain (or search) size; keyword
    arguments override the size (`channels=36, layers=20` for a DARTS cell network)."""
    from nascli.arch_io import resolve_arch
    from nascli.datashape import DataShape
    from nascli.spaces.base import get_space

    if size not in ("retrain", "search"):
        raise UserError(f"size={size!r} is not a network size; use size='retrain' or size='search'")
    arch = arch if isinstance(arch, Arch) else resolve_arch(str(arch))
    space = get_space(arch.space)
    node = space.cfg[size]
    unknown = sorted(set(net) - set(node))
    if unknown:
        raise UserError(f"unknown {arch.space} network setting(s) {unknown}; choose from {sorted(node)}")
    for key, value in net.items():
        node[key] = value
    return space.build(arch, DataShape(in_channels, height, width, num_classes), node)


class _arch_ref:
    """A command-line reference for an architecture: the string itself, or an Arch written to a temporary
    arch.json for the length of the call."""

    def __init__(self, arch: PathLike | Arch):
        self.arch, self._tmp = arch, None

    def __enter__(self) -> str:
        if not isinstance(self.arch, Arch):
            return str(self.arch)
        self._tmp = tempfile.TemporaryDirectory(prefix="nascli-arch-")
        path = Path(self._tmp.name) / f"{self.arch.arch_id}.json"
        path.write_text(json.dumps(self.arch.to_json(), indent=2))
        return str(path)

    def __exit__(self, *exc) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


def _argv(command: str, items: list[str]) -> list[str]:
    return ["nascli." + command, *items]


def _quiet(message: str) -> None:
    pass
