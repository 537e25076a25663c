"""PNAS figure: predicted (before evaluation) vs measured score, one panel per level."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures go to PNG files in run directories

import matplotlib.pyplot as plt  # noqa: E402


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
