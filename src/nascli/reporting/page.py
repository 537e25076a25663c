"""One self-contained HTML page per run: images inline (SVG, or PNG as base64), no network, no JavaScript.

A page is a list of sections; each run kind adds its own (search, retrain, rank, correlate) after the common
header. Everything is read from the run directory's plain files, so a report can be made of any finished or
interrupted run, at any time, on any machine.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from nascli.arch import Arch  # noqa: E402
from nascli.reporting.cells import cell_figures, to_svg  # noqa: E402
from nascli.rundir import RunDir  # noqa: E402

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
td { white-space: nowrap; } th { white-space: normal; }
th { background: #f3f3f3; } td.text, th.text { text-align: left; }
td.description { text-align: left; font-size: 0.85em; }
td[title] { cursor: help; }
.figure { margin: 0.5em 0 1.5em; } .figure img, .figure svg { max-width: 100%; height: auto; }
.status-done { color: #2a7a2a; } .status-failed, .status-interrupted { color: #b22; }
.warning { background: #fff4d6; border-left: 4px solid #e0a800; padding: 0.4em 0.8em; margin: 0.3em 0; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.muted { color: #777; }
"""


def esc(value) -> str:
    return html.escape(str(value))


def fmt(value) -> str:
    if isinstance(value, float):
        return "—" if value != value else f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10000:
        return f"{value:,}"
    return "—" if value is None else str(value)


# A row is one line and a page fits a 1280-pixel window: longer text is cut, with the whole value on hover.
CELL_CHARS, VALUE_CHARS = 48, 110


def cell(value, css: str, limit: int = CELL_CHARS) -> str:
    text = fmt(value)
    if len(text) <= limit:
        return f'<td class="{css}">{esc(text)}</td>'
    return f'<td class="{css}" title="{esc(text)}">{esc(text[:limit - 1])}…</td>'


def table(frame: pd.DataFrame, text_columns: tuple[str, ...] = ()) -> str:
    def kind(c):  # left-aligned text
        return "description" if c == "description" else "text" if c in text_columns else ""

    head = "".join(f'<th class="{"text" if c in text_columns else ""}">{esc(c)}</th>' for c in frame.columns)
    rows = []
    for _, row in frame.iterrows():
        cells = "".join(cell(v, kind(c)) for c, v in row.items())
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def key_values(pairs: dict) -> str:
    rows = "".join(f'<tr><th class="text">{esc(k)}</th>{cell(v, "text", VALUE_CHARS)}</tr>' for k, v in pairs.items())
    return f"<table>{rows}</table>"


def png(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<div class="figure"><img alt="{esc(alt)}" src="data:image/png;base64,{data}"></div>'


def figure_png(fig, alt: str) -> str:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<div class="figure"><img alt="{esc(alt)}" src="data:image/png;base64,{data}"></div>'


def records(run: RunDir) -> list[dict]:
    path = run.path / RunDir.METRICS
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line torn by a kill: the report shows what is readable
    return out


def cell_section(run: RunDir, title: str) -> str:
    """The run's selected architecture drawn as cells; the SVGs are also written to plots/cell_<type>.svg."""
    path = run.path / RunDir.ARCH
    if not path.exists():
        return ""
    doc = json.loads(path.read_text())
    arch = Arch(doc["space"], doc["genotype"])
    parts = [f"<h2>{esc(title)}</h2>",
             f'<p class="muted">{esc(doc["space"])} · arch_id {esc(arch.arch_id)} · {esc(doc.get("description", ""))}</p>']
    for cell_type, fig in cell_figures(arch).items():
        svg = to_svg(fig)
        (run.path / "plots").mkdir(exist_ok=True)
        (run.path / "plots" / f"cell_{cell_type}.svg").write_text(svg)
        parts.append(f'<div class="figure">{svg}</div>')
    return "\n".join(parts)


def header(run: RunDir) -> str:
    m = run.manifest
    status = run.status
    summary = {"kind": m.get("kind"), "status": status, "started": m.get("started_at"), "ended": m.get("ended_at"),
               "wall time (s)": m.get("wall_time_s"), "device": m.get("device"), "seed": m.get("seed")}
    for key in ("strategy", "space", "dataset"):
        if m.get(key):
            summary[key] = m[key]
    warnings = [*((m.get("summary") or {}).get("warnings") or []), *(m.get("resume_warnings") or [])]
    if m.get("error"):
        warnings.append(f"error: {m['error']}")
    config = (run.path / RunDir.CONFIG).read_text() if (run.path / RunDir.CONFIG).exists() else ""
    versions = m.get("versions") or {}
    return "\n".join([
        f'<h1>{esc(m.get("kind", "run"))}: {esc(m.get("name", run.path.name))} '
        f'<span class="status-{esc(status)}">({esc(status)})</span></h1>',
        f'<p><code>{esc(" ".join(m.get("argv") or []))}</code></p>',
        key_values(summary),
        *[f'<div class="warning">{esc(w)}</div>' for w in warnings],
        f"<details><summary>config</summary><pre>{esc(config)}</pre></details>",
        f"<details><summary>versions</summary>{key_values(versions)}</details>",
    ])


def plots(run: RunDir, skip: tuple[str, ...] = ()) -> str:
    folder = run.path / "plots"
    if not folder.is_dir():
        return ""
    images = [png(p, p.stem) for p in sorted(folder.glob("*.png")) if p.name not in skip]
    return ("<h2>Figures</h2>" + "\n".join(images)) if images else ""


def search_sections(run: RunDir) -> list[str]:
    out = [cell_section(run, "Selected architecture")]
    summary = run.manifest.get("summary") or {}
    if summary:
        out.append("<h2>Summary</h2>" + key_values({k: v for k, v in summary.items() if not isinstance(v, (list, dict))}
                                                   | {k: json.dumps(v) for k, v in summary.items()
                                                      if isinstance(v, dict)}))
    ranked_path = run.path / RunDir.RANKED
    if ranked_path.exists():
        ranked = pd.read_csv(ranked_path, dtype={"arch_id": str})
        keep = [c for c in ranked.columns if c in ("rank", "arch_id", "score", "params", "flops", "status")
                or c.startswith("bench_")] + [c for c in ("description",) if c in ranked.columns]
        out.append(f"<h2>Ranked architectures (top 20 of {len(ranked)})</h2>"
                   + table(ranked[keep].head(20), text_columns=("arch_id", "description", "status")))
        scores = pd.to_numeric(ranked["score"], errors="coerce").dropna()
        if len(scores) > 1:
            fig, ax = plt.subplots(figsize=(6, 3))
            ax.hist(scores, bins=min(30, max(5, len(scores) // 3)), color="#4c72b0")
            ax.set_xlabel("score")
            ax.set_ylabel("architectures")
            ax.set_title("score distribution")
            out.append(figure_png(fig, "score distribution"))
    logged = records(run)  # metrics.jsonl, read once for every section below
    levels = [r for r in logged if r.get("event") == "level"]
    if levels:
        rows = [{"level": r["level"], "round": r.get("round", 0), "evaluated": r["evaluated"],
                 "evaluations": r["evaluations"], "best": r.get("best"),
                 "extrapolation ρ (picked)": (r.get("predictor_extrapolation") or {}).get("spearman"),
                 "extrapolation τ (picked)": (r.get("predictor_extrapolation") or {}).get("kendall"),
                 "extrapolation ρ (all)": (r.get("predictor_extrapolation_all") or {}).get("spearman"),
                 "fit ρ": (r.get("predictor_train") or {}).get("spearman")} for r in levels]
        out.append("<h2>PNAS levels</h2>" + table(pd.DataFrame(rows)))
    epochs = [r for r in logged if r.get("event") == "epoch"]
    if epochs:
        out.append(curves(pd.DataFrame(epochs), "search curves"))
        out.append(snas_section(epochs))
    out.append(smash_section(run, logged))
    out.append(plots(run))
    return out


def smash_section(run: RunDir, logged: list[dict]) -> str:
    """SMASH: the HyperNet's capacity and conditioning sensitivity, and score vs scrambled-conditioning score."""
    parts = []
    for event, title in (("capacity", "HyperNet capacity"), ("hypernet_sensitivity", "HyperNet sensitivity")):
        found = [r for r in logged if r.get("event") == event]
        if found:
            numbers = {k: v for k, v in found[-1].items() if k not in ("time", "event") and not isinstance(v, (list, dict))}
            parts.append(f"<h3>{esc(title)}</h3>" + key_values(numbers))
    archs_path = run.path / RunDir.ARCHS
    if archs_path.exists():
        archs = pd.read_csv(archs_path, dtype={"arch_id": str})
        if "score_scrambled" in archs.columns:
            fig, ax = plt.subplots(figsize=(4.5, 4))
            ax.scatter(archs["score_scrambled"], archs["score"], s=12, alpha=0.7)
            ax.set_xlabel("score, scrambled conditioning")
            ax.set_ylabel("SMASH score")
            ax.set_title("score vs scrambled-conditioning score")
            parts.append(figure_png(fig, "smash score vs scrambled"))
    return ("<h2>SMASH</h2>" + "\n".join(parts)) if parts else ""


def snas_section(epochs: list[dict]) -> str:
    """SNAS: softmax(α) per edge as one small heatmap per epoch (a strip per cell type), and temperature,
    entropy, expected cost and child vs supernet accuracy per epoch."""
    if not any("alpha" in r for r in epochs):
        return ""
    parts = ["<h2>SNAS: α by epoch</h2>"]
    shown = [r for r in epochs if "alpha" in r]
    if len(shown) > 10:  # at most 10 panels: evenly spaced, always the last epoch
        picks = sorted({round(i * (len(shown) - 1) / 9) for i in range(10)})
        shown = [shown[i] for i in picks]
    for cell_type in shown[-1]["alpha"]:
        fig, axes = plt.subplots(1, len(shown), figsize=(1.6 * len(shown) + 1, 3.2), squeeze=False)
        for ax, r in zip(axes[0], shown, strict=True):
            ax.imshow(np.asarray(r["alpha"][cell_type]), aspect="auto", cmap="viridis", vmin=0, vmax=1)
            ax.set_title(f"epoch {r['epoch']}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0][0].set_ylabel("edges", fontsize=8)
        fig.suptitle(f"{cell_type} cell: softmax(α), ops left to right", fontsize=9)
        parts.append(figure_png(fig, f"alpha {cell_type} by epoch"))
    frame = pd.DataFrame(epochs)
    fig, axes = plt.subplots(1, 4, figsize=(14, 3))
    panels = (("tau", "temperature"), ("mean_entropy", "mean α entropy"), ("expected_cost", "expected cost"),
              ("child_acc", "val accuracy"))
    for ax, (key, title) in zip(axes, panels, strict=True):
        if key == "mean_entropy" and key in frame:
            for cell_type in frame[key].iloc[0]:
                ax.plot(frame["epoch"], [v[cell_type] for v in frame[key]], label=cell_type)
            ax.legend(fontsize=7)
        elif key == "child_acc" and key in frame:
            ax.plot(frame["epoch"], frame["child_acc"], label="derived child")
            ax.plot(frame["epoch"], frame["supernet_acc"], label="supernet (sampled)")
            ax.legend(fontsize=7)
        elif key in frame:
            ax.plot(frame["epoch"], frame[key])
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
    parts.append(figure_png(fig, "snas curves"))
    return "\n".join(parts)


def curves(frame: pd.DataFrame, title: str) -> str:
    columns = [c for c in ("train_acc", "val_acc", "child_val_acc", "supernet_val_acc") if c in frame.columns]
    if not columns or "epoch" not in frame.columns:
        return ""
    fig, ax = plt.subplots(figsize=(6, 3))
    for c in columns:
        ax.plot(frame["epoch"], frame[c], marker="o", ms=3, label=c)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return figure_png(fig, title)


def retrain_sections(run: RunDir) -> list[str]:
    out = [cell_section(run, "Retrained architecture")]
    result_path = run.path / RunDir.RESULT
    if result_path.exists():
        result = json.loads(result_path.read_text())
        keys = ("arch_id", "dataset", "seed", "epochs", "test_acc", "val_acc", "best_epoch", "best_val_acc",
                "test_acc_at_best_val", "params", "flops", "latency_ms")
        out.append("<h2>Result</h2>" + key_values({k: result[k] for k in keys if k in result}))
    epochs = [r for r in records(run) if r.get("event") == "epoch"]
    if epochs:
        out.append(curves(pd.DataFrame(epochs), "training curves"))
    out.append(plots(run, skip=("curves.png",) if epochs else ()))
    return out


def correlate_sections(run: RunDir) -> list[str]:
    path = run.path / RunDir.CORRELATION
    if not path.exists():
        return [plots(run)]
    doc = json.loads(path.read_text())
    rows = []
    for r in doc["results"]:
        ci = r.get("ci") or {}
        rows.append({"proxy": r["proxy"], "n": r["n"], "Kendall τ-b": r["kendall_tau"],
                     "τ CI": _ci(ci.get("kendall_tau")), "Spearman ρ": r["spearman_rho"],
                     "ρ CI": _ci(ci.get("spearman_rho")), "Pearson r": r.get("pearson_r"),
                     f"precision@{r.get('k')}": r.get("precision_at_k")})
        if doc.get("given"):
            rows[-1].update({f"partial τ given {doc['given']}": r.get("partial_kendall_tau"),
                             "partial τ CI": _ci(ci.get("partial_kendall_tau"))})
        if doc.get("versus"):
            rows[-1].update({f"τ − τ({doc['versus']})": r.get("delta_kendall_tau"),
                             "difference CI (paired)": _ci(ci.get("delta_kendall_tau"))})
    out = [f"<h2>Correlation with {esc(doc['truth'])} (n = {doc['n']})</h2>",
           f'<p class="muted">{esc(doc["source"])}</p>',
           table(pd.DataFrame(rows), text_columns=("proxy", "τ CI", "ρ CI", "partial τ CI", "difference CI (paired)"))]
    if doc.get("excluded"):
        out.append("<p>Left out, counted: " + esc(json.dumps(doc["excluded"])) + "</p>")
    if doc.get("noise_ceiling"):
        out.append("<h3>Noise ceiling of the truth</h3>" + key_values(
            {k: v for k, v in doc["noise_ceiling"].items() if not isinstance(v, (list, dict))}))
    out.append(plots(run))
    return out


def _ci(pair) -> str:
    return "" if not pair else f"[{pair[0]:.3f}, {pair[1]:.3f}]"


def rank_sections(run: RunDir) -> list[str]:
    out = []
    ranked_path = run.path / RunDir.RANKED
    if ranked_path.exists():
        ranked = pd.read_csv(ranked_path, dtype={"arch_id": str})
        out.append(f"<h2>Ranked architectures (top 20 of {len(ranked)})</h2>"
                   + table(ranked.head(20), text_columns=("arch_id", "description", "status")))
    out.append(plots(run))
    return out


SECTIONS = {"search": search_sections, "retrain": retrain_sections, "correlate": correlate_sections,
            "rank": rank_sections}


def render(body: list[str], title: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(part for part in body if part)
            + "\n<p class=\"muted\">written by <code>nas report</code></p></body></html>\n")


def run_page(run: RunDir) -> str:
    kind = run.manifest.get("kind", "")
    return render([header(run), *SECTIONS.get(kind, lambda r: [plots(r)])(run)], f"nascli {kind} {run.path.name}")


def comparison_page(runs: list[RunDir]) -> str:
    rows, curves_by_run = [], {}
    for run in runs:
        m = run.manifest
        summary = m.get("summary") or {}
        # Each number is labelled by what it is: a search's score of its best architecture (val split, its
        # strategy's estimate), a benchmark's truth for it, a retrain's accuracies on val and test.
        row = {"run": run.path.name, "kind": m.get("kind"), "status": run.status, "strategy": m.get("strategy"),
               "dataset": m.get("dataset"), "search: best score (val)": summary.get("best_score"),
               "search: benchmark truth": json.dumps(summary["best_truth"]) if summary.get("best_truth") else None,
               "retrain: val acc": None, "retrain: test acc": None, "wall time (s)": m.get("wall_time_s")}
        result = run.path / RunDir.RESULT
        if result.exists():
            doc = json.loads(result.read_text())
            row.update({"dataset": doc.get("dataset"), "retrain: val acc": doc.get("val_acc"),
                        "retrain: test acc": doc.get("test_acc"), "params": doc.get("params")})
        rows.append(row)
        epochs = [r for r in records(run) if r.get("event") == "epoch" and "val_acc" in r]
        if epochs:
            curves_by_run[run.path.name] = pd.DataFrame(epochs)
    body = [f"<h1>Comparison of {len(runs)} runs</h1>",
            table(pd.DataFrame(rows).dropna(axis=1, how="all"),
                  text_columns=("run", "kind", "status", "strategy", "dataset", "search: benchmark truth"))]
    if curves_by_run:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        for name, frame in curves_by_run.items():
            ax.plot(frame["epoch"], frame["val_acc"], marker="o", ms=3, label=name[-30:])
        ax.set_xlabel("epoch")
        ax.set_ylabel("val accuracy (%)")
        ax.legend(fontsize=7)
        ax.set_title("val accuracy per epoch")
        body.append(figure_png(fig, "overlaid curves"))
    body += [f'<p><a href="{esc((run.path / "report.html").as_uri())}">{esc(run.path.name)}</a></p>' for run in runs]
    return render(body, "nascli comparison")
