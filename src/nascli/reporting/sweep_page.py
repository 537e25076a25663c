"""`nas report SWEEP`: one page per experiment, written into the sweep folder with the files it is made of.

summary.csv (per group: n, mean ± std, se, median, quartiles, evaluations to the table's top 1%), pairwise.csv
(differences between groups with bootstrap intervals and Mann-Whitney p-values), timing.csv (wall time per
group), anytime_evaluations.png and anytime_seconds.png (mean incumbent ± 1 standard error, log x), report.html.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from nascli.atomic import save_figure, write_csv, write_text  # noqa: E402
from nascli.reporting.page import esc, png, render, table  # noqa: E402
from nascli.sweep_summary import (  # noqa: E402
    TOP_FRACTION,
    SweepData,
    collect,
    curve_by_evaluations,
    curve_by_seconds,
    pairwise,
    summarize,
    timing,
)

SUMMARY, PAIRWISE, TIMING = "summary.csv", "pairwise.csv", "timing.csv"
PAGE_COLUMNS = ["group", "n", "failed", "mean", "std", "se", "median", "q1", "q3", "reached_top",
                "evaluations_to_top_median"]
PAGE_NAMES = {"reached_top": "reached top 1%", "evaluations_to_top_median": "evaluations to top 1% (median)"}
CURVE_FILES = {"evaluation": "anytime_evaluations.png", "seconds": "anytime_seconds.png"}


@dataclass
class SweepReport:
    page: Path
    summary: pd.DataFrame  # summary.csv's rows
    metric: str  # what the summary's mean is of


def write_sweep_report(folder: Path, doc: dict, jobs: pd.DataFrame) -> SweepReport:
    data = collect(jobs, doc["grid"])
    summary, pairs, times = summarize(data.jobs), pairwise(data.jobs), timing(data.jobs)
    write_csv(folder / SUMMARY, summary)
    write_csv(folder / PAIRWISE, pairs)
    write_csv(folder / TIMING, times)
    figures = []
    for axis, name in CURVE_FILES.items():
        fig = anytime_figure(data, axis)
        if fig is not None:
            save_figure(folder / name, fig)
            plt.close(fig)
            figures.append(png(folder / name, f"incumbent against {axis}s"))
    page = folder / "report.html"
    write_text(page, sweep_page(folder, doc, data, summary, pairs, times, figures, jobs))
    return SweepReport(page, summary, data.metric)


def paper_table(data: SweepData, summary: pd.DataFrame, times: pd.DataFrame) -> pd.DataFrame:
    """What a NAS paper prints: method, search cost, and the reported metric as mean ± std over seeds."""
    seconds = dict(zip(times["group"], times["seconds_mean"], strict=True))
    rows = []
    for r in summary.itertuples(index=False):
        cost = f"{r.evaluations:.0f} evaluations, " if r.evaluations == r.evaluations else ""
        rows.append({"method": r.group, "seeds": r.n,
                     "search cost": f"{cost}{seconds.get(r.group, float('nan')):.1f} s per search",
                     data.metric: f"{r.mean:.2f} ± {r.std:.2f}" if r.std == r.std else f"{r.mean:.2f}"})
    return pd.DataFrame(rows)


def anytime_figure(data: SweepData, axis: str):
    curves = {g: (curve_by_evaluations(data, g) if axis == "evaluation" else curve_by_seconds(data, g))
              for g in data.jobs["group"].unique()}
    curves = {g: c for g, c in curves.items() if len(c)}
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for group, c in curves.items():
        line, = ax.plot(c[axis], c["mean"], label=f"{group} (n={int(c['n'].max())})")
        band = c["se"].fillna(0)
        ax.fill_between(c[axis], c["mean"] - band, c["mean"] + band, color=line.get_color(), alpha=0.2)
    if data.top_threshold is not None:
        ax.axhline(data.top_threshold, color="#888", ls="--", lw=1, label=f"table's top {TOP_FRACTION:.0%}")
    ax.set_xscale("log")
    ax.set_xlabel("evaluations" if axis == "evaluation" else "seconds on the search's clock at each lookup")
    ax.set_ylabel(f"incumbent: {data.metric}")
    ax.set_title(f"incumbent against {'evaluations' if axis == 'evaluation' else 'search time'} (mean ± 1 s.e.)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def sweep_page(folder: Path, doc: dict, data: SweepData, summary: pd.DataFrame, pairs: pd.DataFrame,
               times: pd.DataFrame, figures: list[str], job_table: pd.DataFrame) -> str:
    jobs = data.jobs
    failed = jobs[jobs["status"] == "failed"]
    argv = list(doc.get("argv") or [])
    command = " ".join(argv if argv[:1] == ["nas"] else ["nas", *argv])
    grid = ", ".join(f"{k}: {len(v)} value(s)" for k, v in doc["grid"].items())
    body = [f"<h1>Sweep {esc(folder.name)}</h1>",
            f"<p><code>{esc(command)}</code></p>",
            f"<p>{len(jobs)} jobs ({grid}); {int((jobs['status'] == 'done').sum())} done, {len(failed)} failed, "
            f"{int((~jobs['status'].isin(['done', 'failed'])).sum())} not finished. Groups are the swept keys other "
            f"than seed. Headline: <b>{esc(data.metric)}</b>.</p>",
            "<h2>Result</h2>", table(paper_table(data, summary, times), text_columns=("method", "search cost")),
            "<h2>Per group</h2>",
            table(summary[PAGE_COLUMNS].rename(columns=PAGE_NAMES).round(3), text_columns=("group",)),
            f"<p class=\"muted\">{SUMMARY}; std with ddof 1, se = std / √n; evaluations_to_top: evaluations until "
            f"the incumbent reached the table's top {TOP_FRACTION:.0%} "
            + (f"(≥ {data.top_threshold:.2f})" if data.top_threshold is not None else "(no table)")
            + ", over the jobs that reached it (reached_top).</p>"]
    if figures:
        body += ["<h2>Anytime performance</h2>", *figures]
    if len(pairs):
        body += ["<h2>Pairwise differences</h2>",
                 "<p>mean(a) − mean(b), a 95% bootstrap interval (percentile, 2,000 resamples, each group "
                 "resampled on its own) and the two-sided Mann-Whitney U test.</p>",
                 table(pairs.round(5), text_columns=("a", "b"))]
    if len(failed):
        body += ["<h2>Failed jobs</h2>", table(failed[["job", "group", "seed"]].merge(
            job_table[["job", "error"]], on="job", how="left"), text_columns=("group", "error"))]
    body.append(f"<p class=\"muted\">every job: {esc(str(folder / 'jobs.csv'))}; wall times: {TIMING}</p>")
    return render(body, f"nascli sweep {folder.name}")

