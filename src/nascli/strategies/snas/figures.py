"""SNAS figures: the alpha heatmap per cell type and the training curves."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures go to PNG files in run directories

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


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
    for (i, j), v in np.ndenumerate(probs):
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
