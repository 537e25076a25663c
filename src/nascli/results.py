"""The results frame every command writes: one row per evaluated architecture (archs.csv) and its ranking
(ranked.csv), with cost and, where a benchmark table is configured, true accuracy beside the scores."""

from __future__ import annotations

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
    return ok
