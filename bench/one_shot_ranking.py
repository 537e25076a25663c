"""One-shot estimators next to zero-cost proxies on the same cells: one table, paired differences, hybrids.

Joins rank runs that scored the same cells (on arch_id: `nas rank RUN --sample 1000` with each search run's own
estimator, and one zero-cost `nas rank --sample 1000 proxy=...` run of the same seed) into one CSV, adds the
combinations fixed in advance, and runs `nas correlate` on it:

- `zc_best`: rank_mean(synflow, jacob_cov, params), the zero-cost combination chosen on half of these cells
  (bench/proxy_combinations.json);
- `hybrid_<name>`: rank_mean(<name>, synflow, jacob_cov, params) for every one-shot estimator, each reported
  (none is picked on these numbers);
- paired τ differences with bootstrap intervals (`versus=`): every column against `params`, against `zc_best`,
  and each SMASH run against its plain weight-sharing control when `--pair SMASH=PLAIN` names one;
- with `--zc-vote a,b,c,...`: `zc_vote`, a majority vote of those zero-cost columns of the proxies run (the
  combination issue 35 chose on one half of these cells: params,synflow,jacob_cov,meco,az_trainability), and every
  column's paired difference to it.

    python bench/one_shot_ranking.py --proxies RANK_RUN --own NAME=RANK_RUN [...] [--pair A=B ...] \
        --out bench/one_shot_ranking.json      # RANK_RUN:COLUMN picks another column (the scrambled ablation)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from nascli import atomic
from nascli.proxies import PROXIES, load_proxies
from nascli.proxies.base import odd_vote
from nascli.proxies.combined import rank_mean, vote

TRUTH = "bench_cifar10_test_200ep"
ZERO_COST = ["synflow", "jacob_cov", "params"]


def own_column(run: Path) -> str:
    return json.loads((run / "proxies.json").read_text())["columns"][0]


def joined(proxy_run: Path, own: dict[str, str]) -> pd.DataFrame:
    base = pd.read_csv(proxy_run / "archs.csv")
    frame = base[["arch_id", "description", "status", "degenerate", TRUTH, *ZERO_COST]].rename(
        columns={"description": "arch_str"})
    for name, spec in own.items():
        run, _, column = str(spec).partition(":")  # RUN or RUN:COLUMN (e.g. strategy_smash_scrambled)
        run = Path(run)
        scores = pd.read_csv(run / "archs.csv")
        column = column or own_column(run)
        part = scores[["arch_id", column, "status"]].rename(columns={column: name, "status": f"{name}_status"})
        frame = frame.merge(part, on="arch_id", how="outer", validate="one_to_one")
    missing = frame[[TRUTH, *own]].isna().any(axis=1) | (frame["status"] != "ok")
    missing |= pd.concat([frame[f"{n}_status"] != "ok" for n in own], axis=1).any(axis=1)
    if missing.any():  # the runs must have scored the same cells, all of them: nothing is dropped silently
        raise SystemExit(f"{int(missing.sum())} cells are missing from a run or failed there: "
                         f"{frame.loc[missing, 'arch_id'].tolist()[:10]}")
    directions = {c: 1 for c in [*ZERO_COST, *own]}
    frame["zc_best"] = rank_mean(frame[ZERO_COST], directions)
    for name in own:
        frame[f"hybrid_{name}"] = rank_mean(frame[[name, *ZERO_COST]], directions)
    return frame


def correlate(csv: Path, columns: list[str], versus: str, root: Path, top_k: int) -> dict:
    cmd = [sys.executable, "-m", "nascli", "correlate", str(csv), f"proxy={','.join(columns)}", f"truth={TRUTH}",
           f"versus={versus}", f"top_k={top_k}", "--run-root", str(root)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(res.stderr)
    run = Path(next(line for line in res.stdout.splitlines() if line.startswith("run: ")).split("run: ", 1)[1])
    return {"command": "nas " + " ".join(cmd[3:]), **json.loads((run / "correlation.json").read_text())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxies", type=Path, required=True, help="the zero-cost rank run of the same cells")
    parser.add_argument("--own", nargs="+", required=True, help="NAME=RANK_RUN[:COLUMN], a rank run with a run's "
                        "own score (COLUMN: another of its columns, e.g. strategy_smash_scrambled)")
    parser.add_argument("--pair", nargs="*", default=[], help="A=B: report A's τ minus B's with a paired interval")
    parser.add_argument("--zc-vote", default=None, help="a,b,c: add zc_vote, the majority vote of these proxies")
    parser.add_argument("--top-percent", type=float, default=5.0)
    parser.add_argument("--root", type=Path, default=Path("runs"))
    parser.add_argument("--out", type=Path, default=Path("bench/one_shot_ranking.json"))
    args = parser.parse_args()
    load_proxies()
    own = dict(item.split("=", 1) for item in args.own)
    frame = joined(args.proxies, own)
    comparisons = ["params", "zc_best"]
    if args.zc_vote:
        members = odd_vote(args.zc_vote.split(","))
        base = pd.read_csv(args.proxies / "archs.csv").set_index("arch_id")[members]
        scores = base.loc[frame["arch_id"]].reset_index(drop=True)
        if scores.isna().any().any():
            raise SystemExit(f"the proxies run has no score for some cells in {members}")
        frame["zc_vote"] = vote(scores, {m: PROXIES[m].direction for m in members})
        comparisons.append("zc_vote")
    csv = args.out.with_suffix(".csv")
    atomic.write_csv(csv, frame)
    top_k = max(1, round(len(frame) * args.top_percent / 100))
    columns = [*own, *(f"hybrid_{n}" for n in own), *ZERO_COST, "zc_best", *comparisons[2:]]
    out = {"n": len(frame), "degenerate": int(frame["degenerate"].sum()), "top_k": top_k, "csv": str(csv),
           "runs": {"proxies": str(args.proxies), **{k: str(v) for k, v in own.items()}}, "comparisons": {}}
    for versus in [*comparisons, *(b for _, b in (p.split("=", 1) for p in args.pair))]:
        cols = columns if versus in comparisons else [a for a, b in (p.split("=", 1) for p in args.pair)
                                                                 if b == versus] + [versus]
        out["comparisons"][versus] = correlate(csv, cols, versus, args.root, top_k)
    atomic.write_json(args.out, out)
    for r in out["comparisons"]["params"]["results"]:
        print(f"{r['proxy']:>24}: tau {r['kendall_tau']:.3f} rho {r['spearman_rho']:.3f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
