"""Cell diagrams as every NAS paper draws them, with matplotlib (no graphviz or other system package).

darts / pnas: the two cell inputs c_{k-2} and c_{k-1} on the left, the intermediate nodes (PNAS: blocks) in
the middle, each edge labelled with its op, and the output c_{k} on the right, fed by the concatenated nodes
(dashed). nb201: the 4-node cell, input node 0 to output node 3, one labelled arc per live edge. membank:
per block, its banks and each op's reads (left) and writes (right).
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402

from nascli.arch import Arch  # noqa: E402

OP_COLOURS = {"none": "#bbbbbb", "skip": "#4c72b0", "pool": "#55a868", "conv": "#c44e52"}


def _colour(op: str) -> str:
    for key in ("skip", "pool", "conv"):
        if key in op or (key == "conv" and op.startswith(("sep", "dil", "nor", "conv"))):
            return OP_COLOURS[key]
    return OP_COLOURS["conv"] if op not in ("none", "identity") else OP_COLOURS["skip"]


def cell_figures(arch: Arch) -> dict[str, plt.Figure]:
    """One figure per cell type of the architecture ({"normal": ..., "reduce": ...}, {"cell": ...}, ...)."""
    genotype = arch.genotype
    if "cell" in genotype:
        return {"cell": _nb201(genotype["cell"])}
    if "blocks" in genotype:
        return {"blocks": _membank(genotype["blocks"])}
    return {t: _cell(t, genotype[t], genotype.get(f"{t}_concat")) for t in ("normal", "reduce") if t in genotype}


def to_svg(fig: plt.Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg"):]  # drop the XML prolog: the SVG goes inline into HTML
    if "<metadata>" in text:  # matplotlib's RDF block: names, no content
        text = text[:text.index("<metadata>")] + text[text.index("</metadata>") + len("</metadata>"):]
    return text


def _node(ax, xy, text: str, colour: str) -> None:
    ax.text(*xy, text, ha="center", va="center", fontsize=10, zorder=3,
            bbox={"boxstyle": "round,pad=0.4", "facecolor": colour, "edgecolor": "#333333"})


def _edge(ax, a, b, label: str | None, colour: str, rad: float = 0.0, dashed: bool = False) -> None:
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=12, color=colour, lw=1.6,
                                 linestyle="--" if dashed else "-", shrinkA=16, shrinkB=16,
                                 connectionstyle=f"arc3,rad={rad}", zorder=1))
    if label:
        _label(ax, a, b, rad, label, colour)


# Where along an edge a label may sit, in order of preference: 60% of the way first (edges into one node then keep
# their labels apart), then nearer the middle, then nearer the ends.
LABEL_PLACES = (0.6, 0.5, 0.7, 0.4, 0.75, 0.3, 0.8, 0.25, 0.85, 0.2)


def _label(ax, a, b, rad: float, label: str, colour: str) -> None:
    """An edge's op label on its curve, at the first place where it overlaps no text already drawn (node boxes
    and other labels); the curve is arc3's quadratic Bezier, its control point offset from the chord by rad."""
    renderer = ax.figure.canvas.get_renderer()
    drawn = [t.get_window_extent(renderer) for t in ax.texts]
    dx, dy = b[0] - a[0], b[1] - a[1]
    control = ((a[0] + b[0]) / 2 + rad * dy, (a[1] + b[1]) / 2 - rad * dx)
    text = ax.text(0, 0, label, fontsize=7, ha="center", va="center", color=colour, zorder=2,
                   bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})

    def on_curve(t: float) -> tuple[float, float]:
        return tuple((1 - t) ** 2 * a[i] + 2 * t * (1 - t) * control[i] + t ** 2 * b[i] for i in (0, 1))

    for t in LABEL_PLACES:
        text.set_position(on_curve(t))
        if not any(_overlap(text.get_window_extent(renderer), other) for other in drawn):
            return
    text.set_position(on_curve(LABEL_PLACES[0]))  # nowhere free: the preferred place (the test reports it)


def _overlap(a, b) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > 1 and min(a.y1, b.y1) - max(a.y0, b.y0) > 1


def _cell(cell_type: str, nodes: list, concat: list[int] | None) -> plt.Figure:
    n = len(nodes)
    fig, ax = plt.subplots(figsize=(3.0 + 2.2 * n, 4.2))
    pos = {0: (0.0, 1.2), 1: (0.0, -1.2)}
    for i in range(n):
        pos[i + 2] = (2.0 + 1.8 * i, 0.8 if i % 2 == 0 else -0.8)
    out = (2.8 + 1.8 * n, 0.0)
    # Limits and every node first: a label is placed where it overlaps no box, which needs them all in place.
    ax.set_xlim(-0.7, out[0] + 0.7)
    ax.set_ylim(-1.8, 1.8)
    _node(ax, pos[0], "c[k-2]", "#dddddd")
    _node(ax, pos[1], "c[k-1]", "#dddddd")
    for i in range(n):
        _node(ax, pos[i + 2], str(i), "#fff2b3")
    _node(ax, out, "c[k]", "#b3d9ff")
    for i, edges in enumerate(nodes):
        for j, (op, src) in enumerate(edges):
            rad = 0.0 if abs(pos[src][0] - pos[i + 2][0]) < 2.1 else (0.2 if j % 2 == 0 else -0.2)
            if any(s == src for _, s in edges[:j]):  # the same input twice (PNAS blocks): a second, bent curve
                rad = 0.35 if rad <= 0 else -0.35
            _edge(ax, pos[src], pos[i + 2], op, _colour(op), rad)
    for k in concat or range(2, n + 2):
        _edge(ax, pos[k], out, None, "#888888", dashed=True)
    _finish(ax, f"{cell_type} cell", [-0.7, out[0] + 0.7], [-1.8, 1.8])
    return fig


def _nb201(cell: list) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    pos = {i: (2.0 * i, 0.0) for i in range(4)}
    ax.set_xlim(-0.8, 6.8)
    ax.set_ylim(-1.6, 1.6)
    for i, name in pos.items():
        _node(ax, name, ["0 (in)", "1", "2", "3 (out)"][i], "#dddddd" if i in (0, 3) else "#fff2b3")
    for node, edges in enumerate(cell, start=1):
        for op, src in edges:
            if op == "none":
                continue
            span = node - src
            rad = 0.0 if span == 1 else (-0.45 if span == 2 else 0.5)
            _edge(ax, pos[src], pos[node], op, _colour(op), rad)
    _finish(ax, "NB201 cell", [-0.8, 6.8], [-1.6, 1.6])
    return fig


def _membank(blocks: list) -> plt.Figure:
    # An op's box holds its paths ("3x3d1·5x5d2 + ..."): the columns are as far apart as the widest box needs.
    widest = max(len(" + ".join("·".join(f"{k}x{k}d{d}" for k, d, _ in p) for p in op["paths"]))
                 for b in blocks for op in b["ops"])
    gap = max(2.0, 0.6 + 0.11 * widest)
    fig, axes = plt.subplots(1, len(blocks), figsize=((2.2 + 1.1 * gap) * len(blocks),
                                                      1.0 + 0.9 * max(len(b["ops"]) for b in blocks)))
    axes = axes if len(blocks) > 1 else [axes]
    for b, (ax, block) in enumerate(zip(axes, blocks, strict=True)):
        banks, ops = int(block["banks"]), block["ops"]
        height = max(banks, len(ops))
        ax.set_xlim(-0.9, 2 * gap + 0.9)
        ax.set_ylim(-0.8, height - 0.2)
        read = {k: (0.0, height - 1 - k * (height - 1) / max(banks - 1, 1)) for k in range(banks)}
        write = {k: (2 * gap, y) for k, (_, y) in read.items()}
        for k in range(banks):
            _node(ax, read[k], f"bank {k}", "#dddddd")
            _node(ax, write[k], f"bank {k}", "#b3d9ff")
        for i, op in enumerate(ops):
            y = height - 1 - i * (height - 1) / max(len(ops) - 1, 1)
            paths = " + ".join("·".join(f"{k}x{k}d{d}" for k, d, _ in path) for path in op["paths"])
            _node(ax, (gap, y), f"1x1→{op['width']}\n{paths}", "#fff2b3")
            for k in op["read"]:
                _edge(ax, read[k], (gap, y), None, "#4c72b0")
            for k in op["write"]:
                _edge(ax, (gap, y), write[k], None, "#c44e52")
        _finish(ax, f"block {b + 1}: {banks} banks x {block['bank_channels']} ch", [-0.9, 2 * gap + 0.9],
                [-0.8, height - 0.2])
    return fig


def _finish(ax, title: str, xlim, ylim) -> None:
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_title(title, fontsize=10)
    ax.axis("off")
