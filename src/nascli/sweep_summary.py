"""A sweep's statistics: its jobs grouped by the swept keys other than `seed`, each group summarised the way a NAS
paper reports a method (Lindauer & Hutter's checklist: many seeds, mean and spread, performance over compute).

Per job the headline is the search's final incumbent under the benchmark protocol (the reported metric of the
cell best by fitness), or its benchmark truth or score when it searched without a table. Per group:

- n, failed; the headline's mean, std (ddof 1), standard error, median, quartiles, min and max;
- evaluations and, for table searches, how many evaluations the incumbent took to reach the table's top 1% (the
  metric's 99th percentile over the whole table), with how many jobs reached it at all;
- the anytime curves: the incumbent after k evaluations and after t seconds, mean ± standard error over jobs.

Between every two groups: the difference of the means with a bootstrap interval (scipy.stats.bootstrap, 95%,
percentile, resampling each group on its own: seeds of two strategies are not pairs) and a two-sided
Mann-Whitney U test (scipy.stats.mannwhitneyu). Everything here is deterministic for given runs: wall times are
kept apart (`timing`), so a sweep resumed after a kill gives the same summary.csv as one that ran through.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nascli.protocol import EVALUATIONS
from nascli.rundir import RunDir

TOP_FRACTION = 0.01
BOOTSTRAP_RESAMPLES, CONFIDENCE = 2000, 0.95


@dataclass
class SweepData:
    jobs: pd.DataFrame  # one row per job: job, group, seed, status, final, evaluations, evaluations_to_top, seconds
    curves: dict[int, pd.DataFrame] = field(default_factory=dict)  # job -> its evaluations.csv
    metric: str = "headline"  # what `final` is
    top_threshold: float | None = None  # the metric's top-1% line over the whole table, for table searches


def parse_overrides(text) -> dict[str, str]:
    return dict(item.split("=", 1) for item in str(text).split() if "=" in item)


def group_labels(overrides: pd.Series, grid: dict) -> list[str]:
    """`strategy=pnas` for each job: the swept keys other than seed, in the grid's order."""
    keys = [k for k in grid if k != "seed"]
    labels = []
    for text in overrides:
        settings = parse_overrides(text)
        labels.append(" ".join(f"{k}={settings.get(k)}" for k in keys) or "all jobs")
    return labels


def collect(jobs: pd.DataFrame, grid: dict) -> SweepData:
    """Read each finished job's run directory: its headline, protocol summary and evaluations.csv."""
    rows, curves, metric, threshold = [], {}, None, None
    for job, label in zip(jobs.itertuples(index=False), group_labels(jobs["overrides"], grid), strict=True):
        settings = parse_overrides(job.overrides)
        row = {"job": int(job.job), "group": label, "seed": settings.get("seed"), "status": job.status,
               "final": math.nan, "evaluations": math.nan, "evaluations_to_top": math.nan, "seconds": math.nan}
        if job.status == "done" and isinstance(job.run_dir, str) and Path(job.run_dir).is_dir():
            run = RunDir.open(job.run_dir)
            summary = run.manifest.get("summary") or {}
            row["seconds"] = run.manifest.get("wall_time_s", math.nan)
            row["final"] = float(job.headline) if job.headline == job.headline else math.nan
            metric = metric or job.headline_key
            protocol = summary.get("protocol")
            if protocol and (run.path / EVALUATIONS).is_file():
                curve = pd.read_csv(run.path / EVALUATIONS)
                curves[row["job"]] = curve
                row["evaluations"] = int(protocol["evaluations"])
                if threshold is None:
                    threshold = top_threshold(run)
                reached = curve.index[curve["incumbent"] >= threshold] if threshold is not None else []
                row["evaluations_to_top"] = float(curve.loc[reached[0], "evaluation"]) if len(reached) else math.nan
        rows.append(row)
    return SweepData(pd.DataFrame(rows), curves, metric or "headline", threshold)


def top_threshold(run: RunDir) -> float | None:
    """The reported metric's (1 - TOP_FRACTION) quantile over every cell of the run's benchmark table."""
    from nascli.groundtruth import BenchmarkTable

    cfg = run.config
    bench = cfg.get("benchmark") or {}
    if not bench.get("table"):
        return None
    table = BenchmarkTable(bench["table"], bench["metric"], bench.get("fitness"))
    return float(np.quantile(table.frame[table.metric].to_numpy(dtype=float), 1 - TOP_FRACTION))


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per group (in order of first appearance) from the per-job frame of `collect`."""
    out = []
    for group, rows in frame.groupby("group", sort=False):
        done = rows[rows["status"] == "done"]
        final = done["final"].astype(float).dropna().to_numpy()
        to_top = done["evaluations_to_top"].astype(float)
        n = len(final)
        out.append({
            "group": group, "n": n, "failed": int((rows["status"] == "failed").sum()),
            "mean": final.mean() if n else math.nan, "std": final.std(ddof=1) if n > 1 else math.nan,
            "se": final.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan,
            "median": float(np.median(final)) if n else math.nan,
            "q1": float(np.quantile(final, 0.25)) if n else math.nan,
            "q3": float(np.quantile(final, 0.75)) if n else math.nan,
            "min": final.min() if n else math.nan, "max": final.max() if n else math.nan,
            "evaluations": done["evaluations"].astype(float).mean(),
            # Only a table search has evaluations to count; elsewhere "reached" is not measured, not 0.
            "reached_top": int(to_top.notna().sum()) if done["evaluations"].notna().any() else math.nan,
            "evaluations_to_top_median": to_top.median(),
            "evaluations_to_top_mean": to_top.mean()})
    return pd.DataFrame(out)


def pairwise(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Every two groups: mean(a) - mean(b), its bootstrap interval, and the Mann-Whitney U test's p-value."""
    from scipy import stats

    finals = {g: rows.loc[rows["status"] == "done", "final"].astype(float).dropna().to_numpy()
              for g, rows in frame.groupby("group", sort=False)}
    out = []
    for a, b in itertools.combinations(finals, 2):
        x, y = finals[a], finals[b]
        row = {"a": a, "b": b, "n_a": len(x), "n_b": len(y),
               "mean_difference": x.mean() - y.mean() if len(x) and len(y) else math.nan,
               "ci_low": math.nan, "ci_high": math.nan, "mannwhitney_u": math.nan, "p_value": math.nan}
        if len(x) >= 2 and len(y) >= 2:
            if np.ptp(np.concatenate([x, y])) > 0:
                boot = stats.bootstrap((x, y), lambda p, q, axis=-1: p.mean(axis) - q.mean(axis), vectorized=True,
                                       n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=CONFIDENCE,
                                       method="percentile", rng=np.random.default_rng(seed))
                row["ci_low"], row["ci_high"] = boot.confidence_interval
                test = stats.mannwhitneyu(x, y, alternative="two-sided")
                row["mannwhitney_u"], row["p_value"] = float(test.statistic), float(test.pvalue)
            else:  # every value equal: no spread to resample, and no rank difference
                row["ci_low"] = row["ci_high"] = 0.0
                row["p_value"] = 1.0
        out.append(row)
    return pd.DataFrame(out, columns=["a", "b", "n_a", "n_b", "mean_difference", "ci_low", "ci_high",
                                      "mannwhitney_u", "p_value"])


def curve_by_evaluations(data: SweepData, group: str) -> pd.DataFrame:
    """The incumbent after k evaluations, mean and standard error over the group's jobs. A job that stopped
    before k (a smaller budget) keeps its last incumbent: that is what its search returned."""
    series = _group_curves(data, group)
    if not series:
        return pd.DataFrame(columns=["evaluation", "mean", "se", "n"])
    length = max(len(c) for c in series)
    grid = np.full((len(series), length), np.nan)
    for i, c in enumerate(series):
        values = c["incumbent"].to_numpy(dtype=float)
        grid[i, :len(values)] = values
        grid[i, len(values):] = values[-1]
    return _mean_se(np.arange(1, length + 1), grid, "evaluation")


def curve_by_seconds(data: SweepData, group: str, points: int = 60) -> pd.DataFrame:
    """The incumbent after t seconds of the search's own clock (log-spaced t), over the jobs that had evaluated
    something by then (`n` says how many)."""
    series = [c for c in _group_curves(data, group) if c["seconds"].notna().all()]
    if not series:
        return pd.DataFrame(columns=["seconds", "mean", "se", "n"])
    first = max(min(c["seconds"].min() for c in series), 1e-3)
    last = max(c["seconds"].max() for c in series)
    times = np.geomspace(first, max(last, first * 1.01), points)
    grid = np.full((len(series), points), np.nan)
    for i, c in enumerate(series):
        seen = np.searchsorted(c["seconds"].to_numpy(dtype=float), times, side="right")
        values = c["incumbent"].to_numpy(dtype=float)
        grid[i] = np.where(seen > 0, values[np.maximum(seen - 1, 0)], np.nan)
    return _mean_se(times, grid, "seconds")


def _group_curves(data: SweepData, group: str) -> list[pd.DataFrame]:
    jobs = data.jobs[(data.jobs["group"] == group) & (data.jobs["status"] == "done")]["job"]
    return [data.curves[j] for j in jobs if j in data.curves]


def _mean_se(x: np.ndarray, grid: np.ndarray, name: str) -> pd.DataFrame:
    mean, se, n = np.full(len(x), np.nan), np.full(len(x), np.nan), np.zeros(len(x), dtype=int)
    for j in range(len(x)):
        column = grid[~np.isnan(grid[:, j]), j]
        n[j] = len(column)
        if len(column):
            mean[j] = column.mean()
        if len(column) > 1:
            se[j] = column.std(ddof=1) / math.sqrt(len(column))
    return pd.DataFrame({name: x, "mean": mean, "se": se, "n": n})


def timing(frame: pd.DataFrame) -> pd.DataFrame:
    """Per group: the search's own wall time (mean and total). Not in summary.csv: it changes run to run."""
    done = frame[frame["status"] == "done"]
    return done.groupby("group", sort=False)["seconds"].agg(["mean", "sum"]).rename(
        columns={"mean": "seconds_mean", "sum": "seconds_total"}).reset_index()
