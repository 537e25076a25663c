"""Rich tables for the terminal and matplotlib figures for run directories."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # headless: figures go to PNG files in run directories

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
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
    if truth_column:
        table.add_column(truth_column, style="magenta", justify="right")
    table.add_column("architecture", overflow="fold")
    for _, row in ranked.head(top).iterrows():
        cells = [str(int(row["rank"])), row["arch_id"], *[_score(row.get(c)) for c in shown],
                 human(row.get("params")), human(row.get("flops"))]
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


def edge_labels(num_edges: int, n_inputs: int) -> list[str]:
    """'n<node>-<input>' for every edge, in supernet edge order."""
    labels, node = [], 0
    while len(labels) < num_edges:
        labels.extend(f"n{node + n_inputs}<-{j}" for j in range(n_inputs + node))
        node += 1
    return labels[:num_edges]


def alpha_heatmap(probs, ops, n_inputs: int, title: str):
    """softmax(alpha) as an edges x ops heatmap, each cell annotated."""
    probs = probs.numpy() if hasattr(probs, "numpy") else probs
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(ops), 0.9 + 0.32 * len(probs)))
    im = ax.imshow(probs, cmap="viridis", vmin=0.0, vmax=max(float(probs.max()), 1e-6), aspect="auto")
    ax.set_xticks(range(len(ops)), ops, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(probs)), edge_labels(len(probs), n_inputs), fontsize=8)
    for (i, j), v in __import__("numpy").ndenumerate(probs):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6.5, color="white" if v < probs.max() / 2 else "black")
    fig.colorbar(im, ax=ax, fraction=0.04)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def snas_curves(history: list[dict]):
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    axes[0].plot(epochs, [h["train_ce"] for h in history], label="cross-entropy")
    axes[0].plot(epochs, [h["train_penalty"] for h in history], label="resource penalty")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("loss")
    axes[0].legend()
    axes[1].plot(epochs, [h["train_acc"] for h in history], label="train (sampled)")
    axes[1].plot(epochs, [h["supernet_acc"] for h in history], label="val, supernet")
    axes[1].plot(epochs, [h["child_acc"] for h in history], label="val, derived child")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("accuracy (%)")
    axes[1].legend()
    axes[2].plot(epochs, [h["tau"] for h in history], color="tab:red", label="temperature")
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("temperature")
    twin = axes[2].twinx()
    twin.plot(epochs, [h["expected_params"] for h in history], color="tab:blue", label="expected params")
    twin.set_ylabel("expected params")
    fig.tight_layout()
    return fig


def _fmt(v, digits: int = 3) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def correlation_rows(doc: dict) -> list[list[str]]:
    rows = []
    for r in doc["results"]:
        ci = r.get("ci", {})

        def with_ci(key, r=r, ci=ci):
            lo_hi = ci.get(key)
            return _fmt(r[key]) + (f" [{_fmt(lo_hi[0])}, {_fmt(lo_hi[1])}]" if lo_hi else "")

        rows.append([r["proxy"] + (" (lower better)" if r["direction"] < 0 else ""), str(r["n"]),
                     with_ci("kendall_tau"), f"{r['kendall_p']:.2g}", with_ci("spearman_rho"), with_ci("pearson_r"),
                     f"{r['top_k_overlap']}/{r['k']}"])
    return rows


CORRELATION_HEADER = ["proxy", "n", "Kendall τ-b", "p", "Spearman ρ", "Pearson r", "top-K overlap"]


def correlation_table(doc: dict) -> Table:
    conf = int(round(100 * doc["results"][0]["confidence"])) if doc["results"] else 95
    table = Table(title=f"agreement with {doc['truth']} ({conf}% bootstrap intervals)", title_justify="left")
    for col in CORRELATION_HEADER:
        table.add_column(col, justify="left" if col == "proxy" else "right")
    for row in correlation_rows(doc):
        table.add_row(*row)
    return table


def correlation_markdown(doc: dict) -> str:
    lines = ["# Proxy vs truth", "", f"- source: {doc['source']}", f"- truth: `{doc['truth']}`",
             f"- architectures: {doc['n']} (collapsed by {doc['collapsed']['rule']}: {doc['collapsed']['rows']} rows "
             f"-> {doc['collapsed']['kept']})"]
    excluded = doc.get("excluded") or {}
    if excluded:
        lines.append("- left out: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in excluded.items()
                                               if isinstance(v, int)))
    if doc.get("noise_ceiling"):
        c = doc["noise_ceiling"]
        lines.append(f"- noise ceiling (seed-to-seed Kendall τ of the truth, {c['seeds']} seeds): "
                     f"{c['seed_to_seed_kendall_tau']:.3f}")
    lines += ["", "| " + " | ".join(CORRELATION_HEADER) + " |", "|" + "---|" * len(CORRELATION_HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in correlation_rows(doc)]
    lines += ["", "Directions are applied before correlating (a lower-is-better proxy is negated); "
              "intervals are percentile bootstraps over architectures (scipy.stats.bootstrap).", "",
              "![proxy vs truth](plots/scatter.png)", ""]
    return "\n".join(lines)


def correlation_figure(frame: pd.DataFrame, results: list[dict], truth: str):
    n = len(results)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 4 * rows), squeeze=False)
    for ax, r in zip(axes.flat, results, strict=False):
        x = frame[r["proxy"]].to_numpy(dtype=float)
        shown = np.isfinite(x)  # -inf scores (a proxy's worst) are ranked but cannot be drawn
        ax.scatter(x[shown], frame[truth].to_numpy()[shown], s=10 if len(frame) > 200 else 22,
                   alpha=0.5 if len(frame) > 200 else 0.8)
        x = x[shown]
        if len(x) and x.min() > 0 and x.max() / x.min() > 100:
            ax.set_xscale("log")
        ax.set_xlabel(r["proxy"] + (" (lower is better)" if r["direction"] < 0 else ""))
        ax.set_ylabel(truth)
        ax.set_title(f"τ = {r['kendall_tau']:.3f}, ρ = {r['spearman_rho']:.3f}, n = {r['n']}")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def batch_table(outcomes, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("arch_id", "seed", "val_acc", "test_acc", "params", "seconds", "run"):
        table.add_column(col, justify="left" if col in ("arch_id", "run") else "right", overflow="fold")
    for out in outcomes:
        r = out.result
        table.add_row(r["arch_id"], str(r["seed"]), f"{r['val_acc']:.2f}", f"{r['test_acc']:.2f}", human(r["params"]),
                      f"{r['wall_time_s']:.0f}", out.run.path.name)
    return table


def pnas_levels_figure(levels: list[list]):
    """Predicted (before evaluation) vs measured score of every level's evaluated cells."""
    shown = [(i + 1, cands) for i, cands in enumerate(levels) if any(c.extra.get("predicted") is not None
                                                                     for c in cands)]
    fig, axes = plt.subplots(1, max(len(shown), 1), figsize=(4.4 * max(len(shown), 1), 4), squeeze=False)
    for ax, (level, cands) in zip(axes[0], shown, strict=False):
        pts = [(c.extra["predicted"], c.score) for c in cands if c.extra.get("predicted") is not None
               and c.status == "ok"]
        if pts:
            ax.scatter(*zip(*pts, strict=True), s=18)
        ax.set_xlabel("predicted (before evaluation)")
        ax.set_ylabel("measured")
        ax.set_title(f"level {level}")
    if not shown:
        axes[0][0].text(0.5, 0.5, "one level only: nothing was predicted", ha="center", va="center")
        axes[0][0].axis("off")
    fig.tight_layout()
    return fig


def smash_figure(history: list[dict], scores: list[float], scrambled: list[float]):
    """HyperNet training loss, and the distribution of SMASH scores (true vs scrambled conditioning)."""
    fig, (ax_loss, ax_hist) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_loss.plot([h["epoch"] for h in history], [h["train_loss"] for h in history])
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("train loss (a fresh architecture per batch)")
    ax_hist.hist(scores, bins=30, alpha=0.7, label="SMASH score")
    finite = [s for s in scrambled if s == s]
    if finite:
        ax_hist.hist(finite, bins=30, alpha=0.5, label="scrambled conditioning")
    ax_hist.set_xlabel("val accuracy with generated weights (%)")
    ax_hist.set_ylabel("architectures")
    ax_hist.legend()
    fig.suptitle("SMASH")
    return fig
