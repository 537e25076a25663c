"""The results frame every command writes: one row per evaluated architecture (archs.csv) and its ranking
(ranked.csv), with cost and, where a benchmark table is configured, true accuracy beside the scores."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nascli.groundtruth import BenchmarkTable
from nascli.measure import arch_cost
from nascli.spaces.base import DataShape, SearchSpace
from nascli.strategies.base import Candidate

BENCH_PREFIX = "bench_"


def candidates_frame(candidates: list[Candidate], space: SearchSpace, shape: DataShape,
                     table: BenchmarkTable | None, costs: dict[str, dict] | None = None) -> pd.DataFrame:
    """One row per candidate, in evaluation order, with cost and (if known) true accuracy.

    `costs` (arch_id -> params/flops at the retrain size) saves rebuilding networks whose size is known."""
    rows, costs = [], dict(costs or {})
    for i, cand in enumerate(candidates):
        arch = cand.arch
        if arch.arch_id not in costs:
            costs[arch.arch_id] = arch_cost(space, arch, shape)
        row = {"index": i, "arch_id": arch.arch_id, "score": cand.score, "status": cand.status,
               **costs[arch.arch_id], "description": space.describe(arch)}
        row.update(cand.extra)
        if table is not None:
            truth = table.truth(space, arch) or {}
            row.update({BENCH_PREFIX + k: v for k, v in truth.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def rank_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Successful candidates by score, best first (ties broken by arch_id, so it is stable)."""
    ok = frame[(frame["status"] == "ok") & frame["score"].notna()]
    ok = ok.drop_duplicates("arch_id").sort_values(["score", "arch_id"], ascending=[False, True], kind="mergesort")
    ok = ok.reset_index(drop=True)
    ok.insert(0, "rank", range(1, len(ok) + 1))
    # Multi-objective view: which architectures no other beats on both score and cost.
    for cost, column in PARETO_COSTS:
        if cost in ok.columns:
            ok[column] = pareto_front(ok["score"].to_numpy(float), ok[cost].to_numpy(float))
    return ok


# (cost column, the ranked.csv column that marks the front of score vs that cost)
PARETO_COSTS = (("params", "pareto_params"), ("latency", "pareto_latency"))


def pareto_front(score: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """True where no other row is at least as good on both (score higher, cost lower) and better on one.

    A sweep in order of cost (then score, best first): a row is dominated when a cheaper row scores at
    least as much, or an equally cheap row scores more. Equal rows do not dominate each other, so exact
    duplicates are both on the front. Rows with a NaN score or cost are never on it.
    """
    n = len(score)
    front = np.zeros(n, dtype=bool)
    valid = ~(np.isnan(score) | np.isnan(cost))
    order = [i for i in np.lexsort((-score, cost)) if valid[i]]
    best_cheaper = -np.inf  # best score among rows strictly cheaper than the current cost group
    i = 0
    while i < len(order):
        group_cost = cost[order[i]]
        j = i
        while j < len(order) and cost[order[j]] == group_cost:
            j += 1
        group_best = score[order[i]]  # sorted best first within the group
        for k in order[i:j]:
            front[k] = score[k] > best_cheaper and score[k] == group_best
        best_cheaper = max(best_cheaper, group_best)
        i = j
    return front
