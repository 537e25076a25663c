"""Figures and the markdown report written into run directories (curves, scores, correlation scatter).

Strategy-specific figures live with their strategy (strategies/<name>/figures.py).
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # headless: figures go to PNG files in run directories

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from nascli.proxies.base import LOWEST  # noqa: E402


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


def _fmt(v, digits: int = 3) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _overlap(v: float) -> str:
    """Top-K overlap: a count, or an expected count (two places) where ties at the K-th place share it."""
    return str(round(v)) if abs(v - round(v)) < 1e-9 else f"{v:.2f}"


def correlation_rows(doc: dict) -> list[list[str]]:
    rows = []
    for r in doc["results"]:
        ci = r.get("ci", {})

        def with_ci(key, r=r, ci=ci):
            lo_hi = ci.get(key)
            return _fmt(r[key]) + (f" [{_fmt(lo_hi[0])}, {_fmt(lo_hi[1])}]" if lo_hi else "")

        rows.append([r["proxy"] + (" (lower better)" if r["direction"] < 0 else ""), str(r["n"]),
                     with_ci("kendall_tau"), f"{r['kendall_p']:.2g}", with_ci("spearman_rho"), with_ci("pearson_r"),
                     f"{_overlap(r['top_k_overlap'])}/{r['k']}"])
        if doc.get("given"):
            rows[-1].append(with_ci("partial_kendall_tau") if "partial_kendall_tau" in r else "-")
        if doc.get("versus"):
            rows[-1].append(with_ci("delta_kendall_tau") if "delta_kendall_tau" in r else "-")
    return rows


CORRELATION_HEADER = ["proxy", "n", "Kendall τ-b", "p", "Spearman ρ", "Pearson r", "top-K overlap"]


def correlation_header(doc: dict) -> list[str]:
    return CORRELATION_HEADER + ([f"partial τ given {doc['given']}"] if doc.get("given") else []) + (
        [f"τ − τ({doc['versus']})"] if doc.get("versus") else [])


def ceiling_text(c: dict) -> str:
    """The noise ceiling in words: what a perfect score would reach against the mean-of-seeds truth."""
    return (f"noise ceiling: a perfect score would reach Kendall τ {c['ceiling_kendall_tau']:.3f} against this "
            f"truth (the mean of {c['seeds_per_arch']:g} seeds; seed-to-seed τ {c['seed_to_seed_kendall_tau']:.3f}, "
            f"two such means {c['mean_of_seeds_kendall_tau']:.3f})")


def correlation_markdown(doc: dict) -> str:
    lines = ["# Proxy vs truth", "", f"- source: {doc['source']}", f"- truth: `{doc['truth']}`",
             f"- architectures: {doc['n']} (collapsed by {doc['collapsed']['rule']}: {doc['collapsed']['rows']} rows "
             f"-> {doc['collapsed']['kept']})"]
    excluded = doc.get("excluded") or {}
    if excluded:
        lines.append("- left out: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in excluded.items()
                                               if isinstance(v, int)))
    if doc.get("noise_ceiling"):
        lines.append(f"- {ceiling_text(doc['noise_ceiling'])}")
    if (doc.get("retrains") or {}).get("mixed"):
        lines.append("- retrains of different settings averaged (mixed=ok): "
                     + "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in doc["retrains"]["differing"].items()))
    header = correlation_header(doc)
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in correlation_rows(doc)]
    lines += ["", "Directions are applied before correlating (a lower-is-better proxy is negated); "
              "intervals are percentile bootstraps over architectures (scipy.stats.bootstrap); a τ difference's "
              "interval is paired (the same resampled architectures for both proxies).", "",
              "![proxy vs truth](plots/scatter.png)", ""]
    return "\n".join(lines)


def correlation_figure(frame: pd.DataFrame, results: list[dict], truth: str):
    n = len(results)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 4 * rows), squeeze=False)
    for ax, r in zip(axes.flat, results, strict=False):
        x = frame[r["proxy"]].to_numpy(dtype=float)
        # -inf scores and the LOWEST sentinel (a proxy's worst, for a degenerate network) are ranked but not
        # drawn: a point at -1.8e308 would squash every other point into one column.
        shown = np.isfinite(x) & (x != LOWEST)
        ax.scatter(x[shown], frame[truth].to_numpy()[shown], s=10 if len(frame) > 200 else 22,
                   alpha=0.5 if len(frame) > 200 else 0.8)
        x = x[shown]
        if len(x) and x.min() > 0 and x.max() / x.min() > 100:
            ax.set_xscale("log")
        ax.set_xlabel(r["proxy"] + (" (lower is better)" if r["direction"] < 0 else ""))
        ax.set_ylabel(truth)
        hidden = f", {int((~shown).sum())} at worst not drawn" if not shown.all() else ""
        ax.set_title(f"τ = {r['kendall_tau']:.3f}, ρ = {r['spearman_rho']:.3f}, n = {r['n']}{hidden}", fontsize=9)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig
