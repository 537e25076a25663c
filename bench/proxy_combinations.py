"""Which combination of zero-cost proxies to use, chosen on one half of the cells and reported on the other.

The rule is fixed before looking: every subset of two or more of the single proxies in a rank run, combined by
`rank_mean` (the mean of the members' ranks, each member's direction applied), is scored by Spearman ρ against
the benchmark truth on one half of the cells; the best one there is reported on the other half, and the same
with the halves swapped. The halves are a seeded split of the functional groups (cells equal up to dead edges
stay on one side), and ranks are taken within each half, as `nas rank` would compute them on that set alone.

    nas rank --sample 1000 space=nb201 proxy=synflow,naswot,snip,grad_norm,jacob_cov,params ... (README)
    python bench/proxy_combinations.py runs/rank/<run> --out bench/proxy_combinations.json
"""

from __future__ import annotations

import argparse
import json
from itertools import combinations
from pathlib import Path

import pandas as pd
from scipy import stats

from nascli import atomic
from nascli.proxies import PROXIES, load_proxies
from proxy_study import first_half, load_scored  # the same split and rows as the study of every proxy

SINGLES = ("synflow", "naswot", "snip", "grad_norm", "jacob_cov", "params")


def rho(frame: pd.DataFrame, members: tuple[str, ...], truth: str) -> float:
    directions = {m: PROXIES[m].direction for m in members}
    combined = PROXIES["rank_mean"].fn(frame[list(members)], directions) if len(members) > 1 else \
        frame[members[0]].to_numpy() * directions[members[0]]
    return float(stats.spearmanr(combined, frame[truth]).statistic)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="a rank run with the single proxies and a benchmark truth column")
    ap.add_argument("--truth", default="bench_cifar10_test_200ep")
    ap.add_argument("--seed", type=int, default=0, help="which split into halves")
    ap.add_argument("--out", default="bench/proxy_combinations.json")
    args = ap.parse_args()
    load_proxies()
    run, frame, failed = load_scored(args.run)
    singles = [p for p in SINGLES if p in frame.columns]
    in_first = first_half(run, frame, args.seed)
    halves = {"A": frame[in_first], "B": frame[~in_first]}
    subsets = [c for size in range(2, len(singles) + 1) for c in combinations(singles, size)]
    doc = {"run": str(run.path), "truth": args.truth, "n": len(frame), "failed": failed, "split_seed": args.seed,
           "halves": {h: len(f) for h, f in halves.items()}, "candidates": len(subsets), "rule": "rank_mean",
           "singles": {p: {h: round(rho(f, (p,), args.truth), 4) for h, f in halves.items()} for p in singles},
           "chosen": {}}
    for pick, report in (("A", "B"), ("B", "A")):
        scored = sorted(((rho(halves[pick], s, args.truth), s) for s in subsets), reverse=True)
        best_rho, best = scored[0]
        doc["chosen"][f"on {pick}"] = {"members": list(best), "rho_where_chosen": round(best_rho, 4),
                                       f"rho_on_{report}": round(rho(halves[report], best, args.truth), 4),
                                       "runner_up": list(scored[1][1]),
                                       "top5": [[list(s), round(r, 4)] for r, s in scored[:5]]}
    atomic.write_json(Path(args.out), doc)
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
