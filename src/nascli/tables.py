"""Rich tables for the terminal: what `nas` prints (the CLI side; nothing here writes files)."""

from __future__ import annotations

import math

import pandas as pd
from rich.table import Table

from nascli.figures import correlation_header, correlation_rows


def human(n) -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "-"
    n = float(n)
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:.0f}"


def ranked_table(ranked: pd.DataFrame, title: str, top: int, truth_column: str | None = None,
                 scores: dict[str, int] | None = None) -> Table:
    """The top rows; `scores` (column -> direction) shows every score column of a rank run, ↑ or ↓ for
    which way is better, instead of the single `score` column."""
    table = Table(title=title, title_justify="left")
    # Numbers never wrap; the architecture column folds to whatever width is left.
    for col, style in (("rank", "bold"), ("arch_id", "cyan")):
        table.add_column(col, style=style, justify="right" if col != "arch_id" else "left", no_wrap=True)
    shown = {c: d for c, d in (scores or {"score": 1}).items() if c not in ("params", "flops")}
    for col in shown:
        table.add_column(col + ("↓" if shown[col] < 0 else "↑") if scores else col, style="green", justify="right",
                         no_wrap=True)
    for col in ("params", "flops"):
        table.add_column(col, justify="right", no_wrap=True)
    timed = "latency" in ranked.columns and "latency" not in shown  # a search's table-predicted latency
    if timed:
        table.add_column("latency ms", justify="right", no_wrap=True)
    if truth_column:
        table.add_column(truth_column, style="magenta", justify="right")
    table.add_column("architecture", overflow="fold")
    for _, row in ranked.head(top).iterrows():
        cells = [str(int(row["rank"])), row["arch_id"], *[_score(row.get(c)) for c in shown],
                 human(row.get("params")), human(row.get("flops"))]
        if timed:
            cells.append(_score(row.get("latency")))
        if truth_column:
            v = row.get(truth_column)
            cells.append("-" if v is None or pd.isna(v) else f"{v:.2f}")
        cells.append(str(row.get("description", "")))
        table.add_row(*cells)
    return table


def _score(v) -> str:
    return "-" if v is None or pd.isna(v) else f"{float(v):.4g}"


def key_values(title: str, values: dict) -> Table:
    # Wide enough for its title: a narrow two-column table would wrap "(seed 0)" onto a second line.
    table = Table(title=title, title_justify="left", show_header=False, min_width=len(title) + 4)
    table.add_column("key", style="bold")
    table.add_column("value")
    for k, v in values.items():
        table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    return table


def correlation_table(doc: dict) -> Table:
    conf = int(round(100 * doc["results"][0]["confidence"])) if doc["results"] else 95
    table = Table(title=f"agreement with {doc['truth']} ({conf}% bootstrap intervals)", title_justify="left")
    for col in correlation_header(doc):
        table.add_column(col, justify="left" if col == "proxy" else "right")
    for row in correlation_rows(doc):
        table.add_row(*row)
    return table


def batch_table(outcomes, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("arch_id", "seed", "val_acc", "test_acc", "params", "seconds", "run"):
        table.add_column(col, justify="left" if col in ("arch_id", "run") else "right", overflow="fold")
    for out in outcomes:
        r = out.result
        table.add_row(r["arch_id"], str(r["seed"]), f"{r['val_acc']:.2f}", f"{r['test_acc']:.2f}", human(r["params"]),
                      f"{out.run.manifest.get('wall_time_s') or 0:.0f}", out.run.path.name)
    return table


def sweep_table(summary: pd.DataFrame, metric: str, title: str) -> Table:
    """One row per group of a sweep (summary.csv): jobs done and failed, the headline as mean ± sd."""
    table = Table(title=title, title_justify="left")
    for column in ("group", "done", "failed", f"{metric}: mean ± sd"):
        table.add_column(column)
    for r in summary.itertuples(index=False):
        value = "" if r.n == 0 else f"{r.mean:.3f}" if r.n == 1 else f"{r.mean:.3f} ± {r.std:.3f}"
        table.add_row(str(r.group), str(int(r.n)), str(int(r.failed)), value)
    return table


def sweep_correlation_table(summary: pd.DataFrame, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("group", "proxy", "jobs", "τ mean ± sd", "95% interval", "ρ mean ± sd"):
        table.add_column(column)
    for r in summary.itertuples(index=False):
        table.add_row(r.group, r.proxy, str(r.jobs), f"{r.tau_mean:.3f} ± {r.tau_std:.3f}",
                      f"[{r.tau_ci_low:.3f}, {r.tau_ci_high:.3f}]", f"{r.rho_mean:.3f} ± {r.rho_std:.3f}")
    return table
