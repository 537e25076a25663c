"""Every zero-cost proxy and combination of one rank run against the benchmark truth, and the best combination
chosen on one half of the cells and reported on the other.

The rule was fixed before the scores were looked at:
- every single network proxy of the run and every combined column it holds gets Spearman ρ and Kendall τ-b
  over all cells, a 95% interval of ρ, and a paired bootstrap interval of its ρ minus the best ρ of the table
  (cells resampled with replacement, the same cells for both; 2,000 resamples);
- candidates for the best combination: `rank_mean` over every subset of 2 to 5 single proxies, and `vote` (the
  Copeland count of pairwise majorities) over every subset of 3 or 5; `flops` is left out of the subsets
  because on NB201 it orders cells exactly as `params` does;
- the cells are split into two halves by a seeded shuffle of their functional groups (cells equal up to dead
  edges stay on one side), every candidate is scored on one half with ranks taken within that half, the best
  there is reported on the other half with a paired interval against rank_mean(synflow, jacob_cov, params), and
  the same with the halves swapped.

    nas rank --sample 1000 space=nb201 proxy=<every proxy> ... (docs/results.md gives the command)
    python bench/proxy_study.py runs/rank/<run> --out bench/proxy_study.json
"""

from __future__ import annotations

import argparse
import json
import random
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from nascli import atomic
from nascli.arch_io import read_arch_file
from nascli.correlation import _percentile_interval
from nascli.proxies import PROXIES, load_proxies
from nascli.rundir import RunDir
from nascli.spaces import get_space

REFERENCE = ("synflow", "jacob_cov", "params")
RESAMPLES = 2000
LEFT_OUT = ("flops", "latency")


def rho(score: np.ndarray, truth: np.ndarray) -> float:
    return float(stats.spearmanr(score, truth).statistic)


def tau(score: np.ndarray, truth: np.ndarray) -> float:
    return float(stats.kendalltau(score, truth, variant="b").statistic)


def copeland(ranks: np.ndarray) -> np.ndarray:
    """How many cells a majority of the members rank strictly below each cell (the `vote` proxy's count)."""
    majority = ranks.shape[1] // 2 + 1
    wins = np.zeros(len(ranks))
    for start in range(0, len(ranks), 256):
        block = ranks[start:start + 256]
        wins[start:start + 256] = ((block[:, None, :] > ranks[None, :, :]).sum(axis=2) >= majority).sum(axis=1)
    return wins


class Half:
    """One set of cells: each single proxy's ranks within it (1 = worst), the truth, and candidate scores."""

    def __init__(self, frame: pd.DataFrame, singles: list[str], truth: str):
        self.truth = frame[truth].to_numpy(dtype=float)
        self.ranks = {p: stats.rankdata(frame[p].to_numpy(dtype=float) * PROXIES[p].direction) for p in singles}

    def score(self, rule: str, members: tuple[str, ...]) -> np.ndarray:
        ranks = np.stack([self.ranks[m] for m in members], axis=1)
        return ranks.mean(axis=1) if rule == "rank_mean" else copeland(ranks)


def paired_delta(a: np.ndarray, b: np.ndarray, truth: np.ndarray, seed: int) -> dict:
    def delta(x, y, t):
        return rho(x, t) - rho(y, t)
    return {"delta_rho": round(delta(a, b, truth), 4),
            "ci": [round(v, 4) for v in _percentile_interval((a, b, truth), delta, RESAMPLES, 0.95, seed)]}


def load_scored(path: str) -> tuple[RunDir, pd.DataFrame, int]:
    """A rank run's rows that scored (status ok), and how many failed."""
    run = RunDir.open(path)
    frame = pd.read_csv(run.path / RunDir.ARCHS)
    failed = int((frame["status"] != "ok").sum())
    return run, frame[frame["status"] == "ok"].reset_index(drop=True), failed


def first_half(run: RunDir, frame: pd.DataFrame, seed: int) -> np.ndarray:
    """A seeded half of the cells by functional group (cells equal up to dead edges stay on one side)."""
    space = get_space("nb201")
    keys = [space.functional_key(read_arch_file(run.arch_file(a))) for a in frame["arch_id"]]
    groups = sorted(set(keys))
    random.Random(seed).shuffle(groups)
    first = set(groups[: len(groups) // 2])
    return np.array([k in first for k in keys])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="a rank run of NB201 cells with its benchmark truth column")
    ap.add_argument("--truth", default="bench_cifar10_test_200ep")
    ap.add_argument("--seed", type=int, default=0, help="which split into halves, and the bootstrap seed")
    ap.add_argument("--costs", default="bench/proxy_costs.json", help="seconds per cell per proxy, if measured")
    ap.add_argument("--out", default="bench/proxy_study.json")
    args = ap.parse_args()
    load_proxies()
    run, frame, failed = load_scored(args.run)
    singles = [p for p, proxy in PROXIES.items() if p in frame.columns and not proxy.combined and p not in LEFT_OUT]
    combined = [p for p, proxy in PROXIES.items() if p in frame.columns and proxy.combined]
    truth = frame[args.truth].to_numpy(dtype=float)
    costs = json.loads(Path(args.costs).read_text())["seconds_per_cell"] if Path(args.costs).exists() else {}

    # every column over all cells
    oriented = {p: frame[p].to_numpy(dtype=float) * PROXIES[p].direction for p in [*singles, "flops", *combined]
                if p in frame.columns}
    table = {p: {"rho": round(rho(v, truth), 4), "tau": round(tau(v, truth), 4),
                 "rho_ci": [round(x, 4) for x in _percentile_interval((v, truth), rho, RESAMPLES, 0.95, args.seed)]}
             for p, v in oriented.items()}
    best = max(table, key=lambda p: table[p]["rho"])
    for p, row in table.items():
        if p != best:
            row["versus_best"] = paired_delta(oriented[p], oriented[best], truth, args.seed)
        if p in costs:
            row["seconds_per_cell"] = costs[p]
    if "rank_mean" in table:
        table["rank_mean"]["members"] = list(REFERENCE)

    # the combination search on halves
    in_first = first_half(run, frame, args.seed)
    halves = {"A": Half(frame[in_first], singles, args.truth), "B": Half(frame[~in_first], singles, args.truth)}
    pool = [p for p in singles]
    candidates = [("rank_mean", s) for size in range(2, 6) for s in combinations(pool, size)]
    candidates += [("vote", s) for size in (3, 5) for s in combinations(pool, size)]
    doc = {"run": str(run.path), "truth": args.truth, "n": len(frame), "failed": failed,
           "degenerate": int(frame.get("degenerate", pd.Series(dtype=int)).fillna(0).sum()),
           "resamples": RESAMPLES, "split_seed": args.seed, "best": best, "table": table,
           "halves": {h: int(len(v.truth)) for h, v in halves.items()}, "candidates": len(candidates),
           "rule": "rank_mean over subsets of 2-5 single proxies, vote over subsets of 3 and 5", "chosen": {}}
    for pick, report in (("A", "B"), ("B", "A")):
        chosen, held = halves[pick], halves[report]
        scored = sorted(((rho(chosen.score(r, s), chosen.truth), r, s) for r, s in candidates), reverse=True)
        best_rho, rule, members = scored[0]
        combo, reference = held.score(rule, members), held.score("rank_mean", REFERENCE)
        doc["chosen"][f"on {pick}"] = {
            "rule": rule, "members": list(members), "rho_where_chosen": round(best_rho, 4),
            f"rho_on_{report}": round(rho(combo, held.truth), 4), f"tau_on_{report}": round(tau(combo, held.truth), 4),
            f"reference_rho_on_{report}": round(rho(reference, held.truth), 4),
            "versus_reference": paired_delta(combo, reference, held.truth, args.seed),
            "top5": [[r, list(s), round(v, 4)] for v, r, s in scored[:5]]}
    atomic.write_json(Path(args.out), doc)
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
