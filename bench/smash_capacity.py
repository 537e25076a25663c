"""SMASH's capacity claim: Kendall τ of the HyperNet's score vs retrained accuracy, per HyperNet size.

Reads the `nas correlate` runs of the README's SMASH measurement (one per HyperNet size, all against the
same retrained architectures) and the search run behind each (its `capacity` record: HyperNet parameters,
width, depth), then writes one table to bench/results.json (key `smash_capacity_<dataset>`) and a plot of
τ-b with its bootstrap interval against HyperNet parameters, next to the scrambled-conditioning ablation,
params and the noise ceiling of the mean-of-seeds truth where the run has them.

    python bench/smash_capacity.py CORRELATE_RUN [CORRELATE_RUN ...] [--out bench/results.json]
        [--plot docs/smash_capacity.png]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nascli import atomic  # noqa: E402

SCORE_COLUMNS = ("score", "strategy_smash")  # a search run's own column, or a rank run's


def search_run_of(correlate_run: Path) -> Path:
    """The search run whose HyperNet scored: the source itself, or the search run a rank run scored with."""
    doc = json.loads((correlate_run / "correlation.json").read_text())
    source = Path(re.match(r"(?:search|rank) run (\S+)", doc["source"]).group(1))
    manifest = json.loads((source / "manifest.json").read_text())
    return Path(manifest["search_run"]) if manifest.get("kind") == "rank" else source


def capacity(search_run: Path) -> dict:
    for line in (search_run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("event") == "capacity":
            return record
    raise SystemExit(f"{search_run} has no capacity record: is it a SMASH search run?")


def row(correlate_run: Path) -> dict:
    doc = json.loads((correlate_run / "correlation.json").read_text())
    cap = capacity(search_run_of(correlate_run))
    by = {r["proxy"]: r for r in doc["results"]}
    score = next(by[c] for c in SCORE_COLUMNS if c in by)

    def tau(r):
        return None if r is None else {"tau": r["kendall_tau"], "ci": r["ci"].get("kendall_tau"),
                                       "partial_tau": r.get("partial_kendall_tau"),
                                       "partial_ci": r["ci"].get("partial_kendall_tau"),
                                       "precision_at_k": r["precision_at_k"], "k": r["k"]}

    return {"hypernet_width": cap["hypernet_width"], "hypernet_depth": cap["hypernet_depth"],
            "hypernet_params": cap["hypernet_params"], "n": doc["n"], "given": doc.get("given"),
            "score": tau(score), "score_scrambled": tau(by.get("score_scrambled")), "params": tau(by.get("params")),
            # the τ a perfect score would reach against this truth, the mean of the seeds (not one seed)
            "noise_ceiling": (doc.get("noise_ceiling") or {}).get("ceiling_kendall_tau"),
            "correlate_run": correlate_run.name}


def plot(rows: list[dict], path: Path) -> None:
    rows = sorted(rows, key=lambda r: r["hypernet_params"])
    fig, ax = plt.subplots(figsize=(6.2, 4))
    x = [r["hypernet_params"] for r in rows]
    tau = [r["score"]["tau"] for r in rows]
    low = [t - r["score"]["ci"][0] for t, r in zip(tau, rows, strict=True)]
    high = [r["score"]["ci"][1] - t for t, r in zip(tau, rows, strict=True)]
    ax.errorbar(x, tau, yerr=[low, high], marker="o", capsize=4, label="SMASH score (95% bootstrap CI)")
    if all(r["score"]["partial_tau"] is not None for r in rows):
        ax.plot(x, [r["score"]["partial_tau"] for r in rows], marker="s", ls="--",
                label=f"partial τ given {rows[0]['given']}")
    for key, style, label in (("score_scrambled", ":", "scrambled conditioning"), ("params", "-.", "params")):
        if all(r[key] is not None for r in rows):
            ax.plot(x, [r[key]["tau"] for r in rows], ls=style, marker=".", label=label)
    ceiling = [r["noise_ceiling"] for r in rows if r["noise_ceiling"] is not None]
    if ceiling:
        ax.axhline(ceiling[0], color="grey", lw=1, label="noise ceiling (mean of the seeds)")
    for r in rows:
        ax.annotate(f"{r['hypernet_width']}x{r['hypernet_depth']}", (r["hypernet_params"], r["score"]["tau"]),
                    textcoords="offset points", xytext=(6, -12), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("HyperNet parameters (width x depth)")
    ax.set_ylabel(f"Kendall τ-b vs retrained accuracy (n = {rows[0]['n']})")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    atomic.save_figure(path, fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="nas correlate run directories, one per HyperNet size")
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--out", type=Path, default=Path("bench/results.json"))
    ap.add_argument("--plot", type=Path, default=Path("docs/smash_capacity.png"))
    args = ap.parse_args()
    rows = sorted((row(r) for r in args.runs), key=lambda r: r["hypernet_params"])
    print(json.dumps(rows, indent=2))
    data = json.loads(args.out.read_text()) if args.out.exists() else {}
    data[f"smash_capacity_{args.dataset}"] = rows
    atomic.write_json(args.out, data)
    plot(rows, args.plot)


if __name__ == "__main__":
    main()
