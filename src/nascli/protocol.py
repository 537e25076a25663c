"""The benchmark protocol of a table-evaluated search: what it saw, what it is judged by, and what it spent.

A strategy searches on `benchmark.fitness` (NB201's 12-epoch validation accuracy by default) and is judged by
`benchmark.metric` (the 200-epoch test accuracy): the incumbent after k evaluations is the metric of the cell
that was best *by fitness* among the first k. `evaluations.csv` holds one row per table lookup, in order:

    evaluation, arch_id, fitness, metric, incumbent_fitness, incumbent, table_epochs, seconds

`table_epochs` is the training the table's fitness column stands for (NB201: 12 epochs a lookup), summed;
`seconds` is the run's clock at the lookup. NB201's per-cell training times are not in our table, so no
table seconds are reported.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from nascli.rundir import RunDir

EVALUATIONS = "evaluations.csv"


def evaluation_frame(run: RunDir, fitness_epochs: int | None) -> pd.DataFrame | None:
    """The `evaluation` events of metrics.jsonl as the anytime table above; None when the search logged none."""
    path = run.path / RunDir.METRICS
    if not path.is_file():
        return None
    rows = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record.get("event") == "evaluation":
            rows.append(record)
    if not rows:
        return None
    best_fitness, incumbent, out = -math.inf, math.nan, []
    for k, r in enumerate(rows, start=1):
        if r["fitness"] > best_fitness:  # a later tie does not replace the incumbent
            best_fitness, incumbent = r["fitness"], r["metric"]
        out.append({"evaluation": k, "arch_id": r["arch_id"], "fitness": r["fitness"], "metric": r["metric"],
                    "incumbent_fitness": best_fitness, "incumbent": incumbent,
                    "table_epochs": k * fitness_epochs if fitness_epochs else None, "seconds": r.get("time")})
    return pd.DataFrame(out)


def write_evaluations(run: RunDir, table) -> dict | None:
    """Write evaluations.csv; the manifest's protocol summary (or None without table lookups)."""
    frame = evaluation_frame(run, table.fitness_epochs if table is not None else None)
    if frame is None:
        return None
    run.write_csv(EVALUATIONS, frame)
    last = frame.iloc[-1]
    return {"fitness": table.fitness_column, "metric": table.metric, "evaluations": int(last["evaluation"]),
            "final_incumbent": float(last["incumbent"]), "table_epochs": last["table_epochs"] and int(last["table_epochs"]),
            "fitness_is_metric": table.fitness_column == table.metric}
