"""The `nas` command line: parse arguments, compose the config, call a command, print.

Nothing else happens here; the work lives in nascli.commands.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import typer
from rich.console import Console

from nascli.errors import UserError

app = typer.Typer(
    name="nas",
    help="Neural architecture search experiments: search, retrain, rank, correlate.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stdout = Console()

OVERRIDES = typer.Argument(None, help="Hydra overrides, e.g. strategy=snas dataset=cifar10 budget.epochs=5",
                           show_default=False, metavar="[KEY=VALUE]...")
PRINT_CONFIG = typer.Option(False, "--print-config", help="Print the resolved config and exit.")
CONFIG_DIR = typer.Option(None, "--config-dir", help="A folder of extra config groups (e.g. strategy/my.yaml).")
RUN_ROOT = typer.Option(Path("runs"), "--run-root", envvar="NASCLI_RUN_ROOT", help="Where run directories go.")


def user_errors(fn):
    """Bad input -> one line on stderr, exit code 2, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            typer.echo(f"nas: error: {e}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("nas: interrupted", err=True)
            raise typer.Exit(130) from None

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


@app.command()
@user_errors
def search(ctx: typer.Context, overrides: list[str] | None = OVERRIDES, print_config: bool = PRINT_CONFIG,
           config_dir: Path | None = CONFIG_DIR, run_root: Path = RUN_ROOT):
    """Search a space with a strategy; write ranked architectures and the best arch.json."""
    from nascli.commands.search import run_search
    from nascli.config import compose, to_yaml
    from nascli.report import ranked_table

    overrides = list(overrides or [])
    cfg = compose("search", overrides, config_dir)
    if print_config:
        stdout.print(to_yaml(cfg), end="", markup=False, highlight=False)
        return
    out = run_search(cfg, run_root=run_root, argv=_argv(ctx), overrides=overrides)
    title = (f"{cfg.strategy.name} on {cfg.space.name}/{cfg.dataset.name}: top {min(cfg.top, len(out.ranked))} "
             f"of {len(out.ranked)} in {out.seconds:.0f}s")
    stdout.print(ranked_table(out.ranked, title, int(cfg.top), out.truth_column))
    stdout.print(f"run: {out.run.path}\nbest: {out.run.path / 'arch.json'}  (retrain with "
                 f"`nas retrain {out.run.path / 'arch.json'}`)", markup=False, highlight=False)


@app.command()
@user_errors
def retrain(ctx: typer.Context, arch: str = typer.Argument(..., help="arch.json, run dir, checkpoint, `latest`, or a preset like "
                                                "darts:DARTS_V2"),
            overrides: list[str] | None = OVERRIDES, print_config: bool = PRINT_CONFIG,
            config_dir: Path | None = CONFIG_DIR, run_root: Path = RUN_ROOT):
    """Train an architecture from scratch; write val/test accuracy, params and FLOPs to result.json."""
    from nascli.archfile import resolve_arch, resolve_ref_path
    from nascli.commands.retrain import inherited_overrides, run_retrain
    from nascli.config import compose, to_yaml
    from nascli.report import key_values

    overrides = list(overrides or [])
    arch = resolve_ref_path(arch, run_root)
    resolved = resolve_arch(arch)
    inherited, source_run = inherited_overrides(arch, overrides)
    has_space = any(o.split("=", 1)[0].lstrip("+~") == "space" for o in overrides)
    prefix = ([] if has_space else [f"space={resolved.space}"]) + inherited
    cfg = compose("retrain", prefix + overrides, config_dir)
    if print_config:
        stdout.print(to_yaml(cfg), end="", markup=False, highlight=False)
        return
    if source_run:
        typer.echo(f"nas: using dataset '{cfg.dataset.name}' of search run {source_run} (override with dataset=...)",
                   err=True)
    source = {"ref": arch, **({"run": source_run} if source_run else {})}
    out = run_retrain(resolved, cfg, run_root=run_root, argv=_argv(ctx), overrides=overrides, source=source)
    r = out.result
    stdout.print(key_values(f"retrain {resolved.arch_id} on {cfg.dataset.name}", {
        "val_acc": r["val_acc"], "test_acc": r["test_acc"], "best_epoch": r["best_epoch"],
        "test_acc_at_best_val": r["test_acc_at_best_val"], "params": r["params"], "flops": r["flops"],
        "wall_time_s": r["wall_time_s"],
    }))
    stdout.print(f"run: {out.run.path}", markup=False, highlight=False)


def main() -> None:
    global _process_argv
    _process_argv = sys.argv[1:]
    # Rich would wrap long paths in CI logs; keep a sane width when not on a terminal.
    if not sys.stdout.isatty():
        os.environ.setdefault("COLUMNS", "160")
    app()


if __name__ == "__main__":
    main()
