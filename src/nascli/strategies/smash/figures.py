"""SMASH figure: HyperNet training loss and the score distributions."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures go to PNG files in run directories

import matplotlib.pyplot as plt  # noqa: E402


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
