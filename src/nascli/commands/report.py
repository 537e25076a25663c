"""`nas report [RUN ...]`: report.html in each run directory, and a comparison page for several runs.

Reports are written next to the run's files (report.html, plots/cell_<type>.svg) and change nothing else in
the run: a report can be rewritten at any time. Several runs also get runs/report/<name>/report.html.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from nascli.atomic import write_text
from nascli.errors import UserError
from nascli.reporting.page import comparison_page, run_page
from nascli.rundir import RunDir

KINDS = ("search", "retrain", "rank", "correlate")
REPORT = "report.html"


@dataclass
class ReportOutcome:
    pages: list[Path]  # one per run
    comparison: Path | None


def latest_of_any_kind(run_root: Path) -> RunDir:
    """The run of any kind that started last (finished or not: an interrupted run is worth a look too)."""
    run = RunDir.latest_of(run_root, KINDS, status=None)
    if run is None:
        raise UserError(f"no run under {run_root}; run `nas search` first or pass a run directory")
    return run


def open_run(ref: str, run_root: Path) -> RunDir:
    if ref == "latest" and not Path(ref).exists():
        return latest_of_any_kind(run_root)
    path = Path(ref).expanduser()
    if not path.exists():
        for kind in KINDS:  # a bare run name under <run_root>/<kind>/
            if (Path(run_root) / kind / ref).is_dir():
                path = Path(run_root) / kind / ref
                break
        else:
            raise UserError(f"run {ref} does not exist; pass a run directory, a run name under {run_root}, or latest")
    return RunDir.open(path)


def run_report(refs: list[str], *, run_root: Path) -> ReportOutcome:
    """A page per run, and one per sweep folder (runs/sweep/<stamp>: its statistics, see sweep_summary)."""
    from nascli.sweep import is_sweep

    sweeps = [ref for ref in refs if is_sweep(ref)]
    refs = [ref for ref in refs if ref not in sweeps]
    pages = [sweep_report(ref).page for ref in sweeps]
    if sweeps and not refs:
        return ReportOutcome(pages, None)
    runs = [open_run(ref, run_root) for ref in refs] if refs else [latest_of_any_kind(run_root)]
    for run in runs:
        page = run.path / REPORT
        write_text(page, run_page(run))
        pages.append(page)
    comparison = None
    if len(runs) > 1:
        folder = Path(run_root) / "report" / f"{datetime.now():%Y-%m-%d_%H-%M-%S}_{len(runs)}_runs"
        folder.mkdir(parents=True, exist_ok=True)
        comparison = folder / REPORT
        write_text(comparison, comparison_page(runs))
    return ReportOutcome(pages, comparison)


def sweep_report(ref: str):
    """Write a sweep's page and statistics; returns reporting.sweep_page.SweepReport (.page, .summary, .metric)."""
    from nascli.reporting.sweep_page import write_sweep_report
    from nascli.sweep import open_sweep, read_jobs

    folder, doc = open_sweep(ref)
    return write_sweep_report(folder, doc, read_jobs(folder))
