"""The `nas` command line: parse arguments, call the Python API (nascli.api), print.

Nothing else happens here; the work lives in nascli.commands, behind the API.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import typer
from rich.console import Console

from nascli.errors import UserError

app = typer.Typer(
    name="nas",
    help="Neural architecture search experiments: search, retrain, rank, correlate, report, export.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stdout = Console()

OVERRIDES = typer.Argument(None, help="Hydra overrides, e.g. strategy=snas dataset=cifar10 budget.epochs=5",
                           show_default=False, metavar="[KEY=VALUE]...")
PRINT_CONFIG = typer.Option(False, "--print-config", help="Print the resolved config and exit.")
CONFIG_DIR = typer.Option(None, "--config-dir", help="A folder of extra config groups (e.g. strategy/my.yaml).")
RESUME = typer.Option(None, "--resume", metavar="RUN",
                      help="Continue an interrupted run (a run directory, its name, or `latest`) from its last "
                           "checkpoint; only budget extensions may be overridden.")
RUN_ROOT = typer.Option(Path("runs"), "--run-root", envvar="NASCLI_RUN_ROOT", help="Where run directories go.")


def _print_yaml(cfg) -> None:
    """--print-config: the resolved config, verbatim (no rich markup or wrapping)."""
    from nascli.config import to_yaml

    stdout.print(to_yaml(cfg), end="", markup=False, highlight=False, soft_wrap=True)


def user_errors(fn):
    """Bad input -> one line on stderr, exit code 2, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            typer.echo(f"nas: error: {e}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt as e:
            # SIGINT -> 130, SIGTERM (what SLURM sends before it kills) -> 143, as a shell would report them.
            signum = getattr(e, "signum", 2)
            resume = getattr(e, "resume_command", None)
            typer.echo("nas: interrupted" + (f"; the last checkpoint is saved, resume with: {resume}" if resume else ""),
                       err=True)
            raise typer.Exit(128 + signum) from None

    return wrapper


_process_argv: list[str] | None = None  # set by main(); None when the app is invoked in-process


def _argv(ctx: typer.Context) -> list[str]:
    """The command line as typed (from main), or rebuilt from the parsed parameters."""
    if _process_argv is not None:
        return ["nas", *_process_argv]
    argv = ["nas", ctx.info_name]
    for name, value in ctx.params.items():
        if isinstance(value, (list, tuple)):
            argv.extend(str(v) for v in value)
        elif isinstance(value, bool):
            argv.extend([f"--{name.replace('_', '-')}"] if value else [])
        elif value is not None and name in ("arch",):
            argv.append(str(value))
        elif value is not None:
            argv.extend([f"--{name.replace('_', '-')}", str(value)])
    return argv


MULTIRUN = typer.Option(False, "--multirun", "-m", help="Sweep: one run per point of the grid that comma lists, "
                        "range() and glob() span (Hydra's grammar), written under runs/sweep/; --resume SWEEP "
                        "finishes a killed sweep.")


@app.command()
@user_errors
def search(ctx: typer.Context, overrides: list[str] | None = OVERRIDES, print_config: bool = PRINT_CONFIG,
           config_dir: Path | None = CONFIG_DIR, run_root: Path = RUN_ROOT, resume: str | None = RESUME,
           multirun: bool = MULTIRUN):
    """Search a space with a strategy; write ranked architectures and the best arch.json."""
    from nascli import api
    from nascli.config import compose
    from nascli.sweep import is_sweep
    from nascli.tables import ranked_table

    overrides = list(overrides or [])
    if multirun or (resume is not None and is_sweep(resume)):
        if resume is not None and not is_sweep(resume):
            raise UserError(f"{resume} is not a sweep (no sweep.yaml); -m --resume takes a folder under runs/sweep/")
        _show_sweep(api.sweep("search", resume=resume, overrides=overrides, run_root=run_root, config_dir=config_dir,
                              argv=_argv(ctx)))
        return
    if print_config and resume is None:
        _print_yaml(compose("search", overrides, config_dir))
        return
    out = api.search(resume=resume, overrides=overrides, run_root=run_root, config_dir=config_dir, argv=_argv(ctx),
                     notify=_warn).outcome
    cfg = out.cfg
    from nascli import distributed

    if not distributed.is_main():
        return  # under torchrun, rank 0 prints (and wrote the run directory)
    title = (f"{cfg.strategy.name} on {cfg.space.name}/{cfg.dataset.name}: top {min(cfg.top, len(out.ranked))} "
             f"of {len(out.ranked)} in {out.seconds:.0f}s")
    stdout.print(ranked_table(out.ranked, title, int(cfg.top), out.truth_column))
    for warning in out.warnings:
        typer.echo(f"nas: warning: {warning}", err=True)
    stdout.print(f"run: {out.run.path}\nbest: {out.best.arch_id} -> {out.run.path / 'arch.json'}  (retrain with "
                 f"`nas retrain {out.run.path / 'arch.json'}`)", markup=False, highlight=False, soft_wrap=True)


def _show_sweep(out) -> None:
    from nascli.tables import sweep_table

    stdout.print(sweep_table(out.report.summary, out.report.metric, f"sweep: {len(out.jobs)} jobs, {out.failed} failed"))
    stdout.print(f"sweep: {out.folder}", markup=False, highlight=False, soft_wrap=True)
    stdout.print(f"report: {out.report.page}", markup=False, highlight=False, soft_wrap=True)
    if out.failed:
        typer.echo(f"nas: error: {out.failed} of {len(out.jobs)} job(s) failed (status and error in "
                   f"{out.folder / 'jobs.csv'})", err=True)
        raise typer.Exit(1)


TOP = typer.Option(None, "--top", help="Batch: retrain the K best architectures of a search or rank run.",
                   metavar="K")
SAMPLE_RETRAIN = typer.Option(None, "--sample", metavar="K",
                              help="Batch: retrain K architectures spread over the run's ranking (seeded).")
SEEDS = typer.Option(None, "--seeds", metavar="S,S,...", help="Repeat every retrain with these seeds (default: seed).")


@app.command()
@user_errors
def retrain(ctx: typer.Context, arch: str = typer.Argument(..., help="arch.json, run dir, checkpoint, `latest`, or a preset like "
                                                "darts:DARTS_V2; with --resume: the retrain run to continue"),
            overrides: list[str] | None = OVERRIDES, top: int | None = TOP, sample: int | None = SAMPLE_RETRAIN,
            seeds: str | None = SEEDS, print_config: bool = PRINT_CONFIG,
            config_dir: Path | None = CONFIG_DIR, run_root: Path = RUN_ROOT,
            resume: bool = typer.Option(False, "--resume", help="Continue the interrupted retrain run ARCH (or "
                                        "`latest`); with --top/--sample: skip the batch's finished retrains and "
                                        "resume the interrupted one."),
            multirun: bool = MULTIRUN):
    """Train an architecture from scratch (or many from a run); write val/test accuracy, params, FLOPs."""
    from nascli import api
    from nascli.commands.retrain import plan_retrain, resume_retrain, run_plan
    from nascli.rundir import RunDir
    from nascli.sweep import is_sweep
    from nascli.tables import batch_table

    if multirun or (resume and is_sweep(arch)):
        if top is not None or sample is not None or seeds is not None:
            raise UserError("retrain -m sweeps one architecture over its overrides; write seeds as seed=0,1,2 and "
                            "drop --top/--sample/--seeds")
        if resume and not is_sweep(arch):
            raise UserError(f"{arch} is not a sweep (no sweep.yaml); -m --resume takes a folder under runs/sweep/")
        _show_sweep(api.sweep("retrain", resume=arch if resume else None, arch=arch, overrides=list(overrides or []),
                              run_root=run_root, config_dir=config_dir, argv=_argv(ctx)))
        return
    if resume and top is None and sample is None:
        _show_retrain(resume_retrain(RunDir.resumable(arch, run_root, "retrain"), list(overrides or []), _warn))
        return
    plan = plan_retrain(arch, list(overrides or []), top=top, sample=sample, seeds=seeds, run_root=run_root,
                        config_dir=config_dir)
    if print_config:
        _print_yaml(plan.jobs[0][1])
        return
    if plan.notice:
        typer.echo(f"nas: {plan.notice}", err=True)

    def show(out) -> None:
        if plan.batch_run is None:  # a batch prints one table at the end instead
            _show_retrain(out)

    outcomes = run_plan(plan, run_root=run_root, argv=_argv(ctx), overrides=list(overrides or []), on_done=show,
                        resume=resume, notify=_warn)
    if plan.batch_run is not None:
        run = plan.batch_run
        stdout.print(batch_table(outcomes, f"retrained {len(outcomes)} runs from {run.path.name}"))
        stdout.print(f"correlate with: nas correlate {run.path}", markup=False, highlight=False, soft_wrap=True)


def _warn(message: str) -> None:
    typer.echo(f"nas: warning: {message}", err=True)


def _show_retrain(out) -> None:
    from nascli.tables import key_values

    r = out.result
    stdout.print(key_values(f"retrain {r['arch_id']} on {r['dataset']} (seed {r['seed']})", {
        "val_acc": r["val_acc"], "test_acc": r["test_acc"], "best_epoch": r["best_epoch"],
        "test_acc_at_best_val": r["test_acc_at_best_val"], "params": r["params"], "flops": r["flops"],
        "wall_time_s": out.run.manifest.get("wall_time_s"),
    }))
    stdout.print(f"run: {out.run.path}", markup=False, highlight=False, soft_wrap=True)


SAMPLE_RANK = typer.Option(None, "--sample", metavar="N", help="Add N architectures sampled from the space (seeded).")
ALL_RANK = typer.Option(False, "--all", help="Add every architecture of a finite space (nb201: all 15,625 cells).")


@app.command(context_settings={"allow_interspersed_args": True})
@user_errors
def rank(ctx: typer.Context,
         args: list[str] | None = typer.Argument(None, show_default=False, metavar="[SOURCE]... [KEY=VALUE]...",
                                                 help="Run directories, arch.json or CSV files to rank, then Hydra "
                                                      "overrides (proxy=synflow,naswot space=nb201 ...)."),
         sample: int | None = SAMPLE_RANK, every: bool = ALL_RANK, print_config: bool = PRINT_CONFIG,
         config_dir: Path | None = CONFIG_DIR, run_root: Path = RUN_ROOT, multirun: bool = MULTIRUN):
    """Score architectures with zero-cost proxies, size baselines, or a search run's own strategy."""
    from nascli import api
    from nascli.commands.rank import resolve_sources
    from nascli.config import compose
    from nascli.tables import ranked_table

    refs, overrides = _split_args(args)
    if multirun:
        _show_sweep(api.sweep("rank", sources=refs, sample=sample, every=every, overrides=overrides,
                              run_root=run_root, config_dir=config_dir, argv=_argv(ctx)))
        return
    if print_config:
        sources = resolve_sources(refs, overrides, sample, run_root, every)
        _print_yaml(compose("rank", sources.inherited + overrides, config_dir))
        return
    run = api.rank(*refs, sample=sample, every=every, run_root=run_root, config_dir=config_dir, overrides=overrides,
                   argv=_argv(ctx), notify=lambda message: typer.echo(f"nas: {message}", err=True))
    out, cfg = run.outcome, run.config
    title = (f"ranked by {out.columns[0]} on {cfg.space.name}/{cfg.dataset.name}: top {min(cfg.top, len(out.ranked))} "
             f"of {len(out.ranked)} in {out.seconds:.0f}s")
    stdout.print(ranked_table(out.ranked, title, int(cfg.top), out.truth_column, out.directions))
    if out.failed:
        typer.echo(f"nas: warning: {out.failed} architecture(s) could not be scored (status failed in archs.csv, "
                   "errors in the *_error columns)", err=True)
    if out.degenerate:
        typer.echo(f"nas: {out.degenerate} architecture(s) are degenerate (output ignores the input): every score "
                   "column gives them its worst value", err=True)
    stdout.print(f"run: {out.run.path}", markup=False, highlight=False, soft_wrap=True)


@app.command()
@user_errors
def report(runs: list[str] | None = typer.Argument(None, show_default=False, metavar="[RUN]...",
                                                   help="Run directories or names (default: the latest run of any "
                                                        "kind)."),
           run_root: Path = RUN_ROOT):
    """One self-contained HTML page per run (report.html), and a comparison page for several runs."""
    from nascli import api

    pages = api.report(*(runs or []), run_root=run_root)
    for i, page in enumerate(pages):
        label = "report" if i < max(len(runs or []), 1) else "comparison"  # the comparison page comes last
        stdout.print(f"{label}: {page}", markup=False, highlight=False, soft_wrap=True)


@app.command(context_settings={"allow_interspersed_args": True})
@user_errors
def correlate(ctx: typer.Context,
              args: list[str] | None = typer.Argument(None, show_default=False, metavar="[SOURCE] [KEY=VALUE]...",
                                                      help="A search or rank run (latest: the newest of "
                                                           "either), a CSV, or a sweep of rank runs (default: the "
                                                           "latest search run), then overrides such as proxy=COL "
                                                           "truth=COL."),
              print_config: bool = PRINT_CONFIG, config_dir: Path | None = CONFIG_DIR, run_root: Path = RUN_ROOT):
    """How well proxy scores order architectures by true accuracy (Kendall τ, Spearman ρ, Pearson r, CIs)."""
    from nascli import api
    from nascli.config import compose
    from nascli.figures import ceiling_text
    from nascli.tables import correlation_table

    refs, overrides = _split_args(args)
    if len(refs) > 1:
        raise UserError(f"correlate takes one source, got {len(refs)}: {' '.join(refs)}")
    cfg = compose("correlate", overrides, config_dir)
    if print_config:
        _print_yaml(cfg)
        return
    from nascli.sweep import is_sweep

    if refs and is_sweep(refs[0]):
        from nascli.tables import sweep_correlation_table

        swept = api.correlate(refs[0], config_dir=config_dir, overrides=overrides, argv=_argv(ctx))
        stdout.print(sweep_correlation_table(swept.summary, f"τ per group over {swept.per_job['job'].nunique()} "
                                                             "rank runs (mean ± sd over jobs, 95% interval of the mean)"))
        stdout.print(f"summary: {swept.folder / 'correlation_summary.csv'}", markup=False, highlight=False,
                     soft_wrap=True)
        return
    out = api.correlate(refs[0] if refs else None, run_root=run_root, config_dir=config_dir, overrides=overrides,
                        argv=_argv(ctx)).outcome
    typer.echo(f"nas: used {out.joined.source}", err=True)
    doc = {"truth": out.joined.truth, "results": out.results, "given": cfg.given, "versus": cfg.versus}
    stdout.print(correlation_table(doc))
    ceiling = out.noise_ceiling
    if ceiling:
        stdout.print(ceiling_text(ceiling))
    if (out.joined.retrains or {}).get("mixed"):
        typer.echo("nas: warning: retrains of different settings were averaged (mixed=ok): "
                   + ", ".join(out.joined.retrains["differing"]), err=True)
    excluded = out.joined.excluded
    if excluded.get("failed"):
        typer.echo(f"nas: warning: {excluded['failed']} architecture(s) whose scoring failed are not in the correlation "
                   "(status failed in archs.csv; their errors are in the *_error columns)", err=True)
    if excluded.get("no_truth"):
        typer.echo(f"nas: warning: {excluded['no_truth']} architecture(s) have no value in the truth column", err=True)
    c = out.joined.collapsed
    if c["rows"] != c["kept"]:
        stdout.print(f"{c['rows'] - c['kept']} duplicate/equivalent architectures collapsed ({c['rule']})")
    stdout.print(f"run: {out.run.path}", markup=False, highlight=False, soft_wrap=True)


@app.command(context_settings={"allow_interspersed_args": True})
@user_errors
def export(ctx: typer.Context,
           args: list[str] = typer.Argument(..., show_default=False, metavar="ARCH [KEY=VALUE]...",
                                            help="A retrain run or checkpoint (trained weights), or anything `nas "
                                                 "retrain` accepts (with --init), then overrides for --init."),
           fmt: str = typer.Option("pt2", "--format", "-f", help="pt2 | onnx | state_dict | genotype"),
           out: Path | None = typer.Option(None, "--out", help="The folder to write (default: "
                                           "<run-root>/export/<stamp>_<arch_id>_<format>_<id>)."),
           init: bool = typer.Option(False, "--init", help="Freshly initialised (seeded) weights for an "
                                     "architecture that has no retrain checkpoint."),
           force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
           config_dir: Path | None = CONFIG_DIR, run_root: Path = RUN_ROOT):
    """Take a model out of nascli: a file PyTorch or ONNX Runtime loads without nascli, with export.json."""
    from nascli import api
    from nascli.commands.export import EXPORT_JSON
    from nascli.tables import key_values

    refs, overrides = _split_args(args)
    if len(refs) != 1:
        raise UserError(f"export takes one architecture, got {len(refs)}: {' '.join(refs) or 'none'}")
    folder = api.export(refs[0], fmt, out=out, init=init, force=force, overrides=overrides, run_root=run_root,
                        config_dir=config_dir, argv=_argv(ctx))
    r = json.loads((folder / EXPORT_JSON).read_text())
    check = r.get("check") or {}
    stdout.print(key_values(f"export {r['arch_id']} ({r['space']}) as {fmt}", {
        "files": ", ".join(r["files"]), "weights": r["source"]["weights"] or "none (architecture only)",
        "input": "x".join(map(str, r["input"]["shape"])), "classes": r["num_classes"],
        "test_acc": (r.get("accuracy") or {}).get("test_acc"),
        "max_abs_diff": check.get("max_abs_diff"), "checked_with": check.get("loaded_with"),
    }))
    stdout.print(f"export: {folder}", markup=False, highlight=False, soft_wrap=True)


def _split_args(args: list[str] | None) -> tuple[list[str], list[str]]:
    """Positional sources (paths) versus Hydra overrides (KEY=VALUE, ~KEY, +KEY=VALUE)."""
    refs, overrides = [], []
    for a in args or []:
        (overrides if "=" in a or a.startswith("~") else refs).append(a)
    return refs, overrides


def main() -> None:
    global _process_argv
    _process_argv = sys.argv[1:]
    # Rich would wrap long paths in CI logs; keep a sane width when not on a terminal.
    if not sys.stdout.isatty():
        os.environ.setdefault("COLUMNS", "160")
    app()


if __name__ == "__main__":
    main()
