"""`nas correlate SWEEP`: a sweep of rank runs (`nas rank -m ... seed='range(0,10)'`), correlated job by job and
summarised per group (the swept keys other than seed), so a proxy's τ comes with its spread over samples.

Each done job gets an ordinary correlate run under its job folder (`jobs/<job>/correlate/<run>`: Kendall τ-b,
Spearman ρ and Pearson r with the run's own bootstrap intervals over cells). Then per group and proxy column:
n, τ and ρ as mean, std (ddof 1) and standard error over the jobs, and a 95% bootstrap interval of the mean τ
over jobs (scipy.stats.bootstrap, percentile, 2,000 resamples; with one job: that job's own interval over cells).
The table is written to the sweep folder as `correlation_summary.csv`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nascli.atomic import write_csv
from nascli.errors import UserError
from nascli.sweep import open_sweep, read_jobs
from nascli.sweep_summary import group_labels

SUMMARY = "correlation_summary.csv"
RESAMPLES, CONFIDENCE = 2000, 0.95


@dataclass
class SweepCorrelation:
    folder: Path
    per_job: pd.DataFrame  # job, group, proxy, kendall_tau, its interval, spearman_rho, n, correlate run
    summary: pd.DataFrame  # per group and proxy


def correlate_sweep(ref: str, overrides: list[str], config_dir=None, argv: list[str] | None = None
                    ) -> SweepCorrelation:
    from nascli.commands.correlate import run_correlate
    from nascli.config import compose

    folder, doc = open_sweep(ref)
    if doc["command"] != "rank":
        raise UserError(f"{folder} is a sweep of `{doc['command']}` runs; nas correlate takes a sweep of rank runs "
                        "(nas rank -m ...), or report this one with nas report")
    jobs = read_jobs(folder)
    cfg = compose("correlate", overrides, config_dir)
    rows = []
    for job, group in zip(jobs.itertuples(index=False), group_labels(jobs["overrides"], doc["grid"]), strict=True):
        if job.status != "done":
            continue
        out = run_correlate(cfg, source=str(job.run_dir), run_root=folder / "jobs" / f"{int(job.job):05d}",
                            argv=[*(argv or ["nas", "correlate", str(folder)]), f"[sweep job {int(job.job)}]"],
                            overrides=overrides)
        for r in out.results:
            ci = (r.get("ci") or {}).get("kendall_tau") or [math.nan, math.nan]
            rows.append({"job": int(job.job), "group": group, "proxy": r["proxy"], "n": r.get("n"),
                         "kendall_tau": r["kendall_tau"], "tau_ci_low": ci[0], "tau_ci_high": ci[1],
                         "spearman_rho": r["spearman_rho"], "run_dir": str(out.run.path)})
    if not rows:
        raise UserError(f"{folder} has no finished rank job to correlate; finish it with nas search --resume {folder}")
    per_job = pd.DataFrame(rows)
    summary = summarize_taus(per_job, failed=int((jobs["status"] != "done").sum()))
    write_csv(folder / SUMMARY, summary)
    return SweepCorrelation(folder, per_job, summary)


def summarize_taus(per_job: pd.DataFrame, failed: int = 0) -> pd.DataFrame:
    from scipy import stats

    out = []
    for (group, proxy), rows in per_job.groupby(["group", "proxy"], sort=False):
        tau = rows["kendall_tau"].to_numpy(dtype=float)
        rho = rows["spearman_rho"].to_numpy(dtype=float)
        n = len(tau)
        low, high = (rows["tau_ci_low"].iloc[0], rows["tau_ci_high"].iloc[0]) if n == 1 else (math.nan, math.nan)
        if n >= 2 and np.ptp(tau) > 0:
            boot = stats.bootstrap((tau,), np.mean, n_resamples=RESAMPLES, confidence_level=CONFIDENCE,
                                   method="percentile", rng=np.random.default_rng(0))
            low, high = boot.confidence_interval
        elif n >= 2:
            low = high = tau[0]
        out.append({"group": group, "proxy": proxy, "jobs": n, "archs_per_job": rows["n"].mean(),
                    "tau_mean": tau.mean(), "tau_std": tau.std(ddof=1) if n > 1 else math.nan,
                    "tau_se": tau.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan,
                    "tau_ci_low": low, "tau_ci_high": high,
                    "rho_mean": rho.mean(), "rho_std": rho.std(ddof=1) if n > 1 else math.nan})
    frame = pd.DataFrame(out)
    frame.attrs["failed_jobs"] = failed
    return frame
