"""Rich tables for the terminal and matplotlib figures for run directories."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # headless: figures go to PNG files in run directories

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from rich.table import Table  # noqa: E402


def human(n) -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "-"
    n = float(n)
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:.0f}"


def ranked_table(ranked: pd.DataFrame, title: str, top: int, truth_column: str | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    for col, style in (("rank", "bold"), ("arch_id", "cyan"), ("score", "green"), ("params", ""), ("flops", "")):
        table.add_column(col, style=style or None, justify="right" if col != "arch_id" else "left")
    if truth_column:
        table.add_column(truth_column, style="magenta", justify="right")
    table.add_column("architecture", overflow="fold")
    for _, row in ranked.head(top).iterrows():
        cells = [str(int(row["rank"])), row["arch_id"], f"{row['score']:.4g}", human(row.get("params")),
                 human(row.get("flops"))]
        if truth_column:
            v = row.get(truth_column)
            cells.append("-" if v is None or pd.isna(v) else f"{v:.2f}")
        cells.append(str(row.get("description", "")))
        table.add_row(*cells)
    return table


def key_values(title: str, values: dict) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    for k, v in values.items():
        table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    return table


def curves_figure(history: list[dict], title: str):
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax_loss.plot(epochs, [h["val_loss"] for h in history], label="val")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    ax_acc.plot(epochs, [h["train_acc"] for h in history], label="train")
    ax_acc.plot(epochs, [h["val_acc"] for h in history], label="val")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.legend()
    fig.suptitle(title)
    return fig


def scores_figure(frame: pd.DataFrame, title: str, truth_column: str | None = None):
    ok = frame[frame["status"] == "ok"]
    panels = 2 if truth_column and ok[truth_column].notna().any() else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4), squeeze=False)
    ax = axes[0][0]
    ax.scatter(ok["params"], ok["score"], s=14, alpha=0.75)
    ax.set_xscale("log")
    ax.set_xlabel("params (retrain size)")
    ax.set_ylabel("search score")
    if panels == 2:
        ax2 = axes[0][1]
        ax2.scatter(ok["score"], ok[truth_column], s=14, alpha=0.75, color="tab:purple")
        ax2.set_xlabel("search score")
        ax2.set_ylabel(truth_column)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
