"""Whole training paths under the shipped precision (`device.amp=auto`, `device.channels_last=auto`) against the
float32 NCHW they ran in before (`device.amp=off device.channels_last=false`): wall time and result.

Each path is one `nas` command run as a fresh process in both settings, the two alternating (per seed, the order
flips), on the same machine and thread count, so drift hits both alike. What `auto` chose is read back from the
run's manifest (`precision`). Reported per path: wall seconds of each run and their ratio, and the result:

- retrains: test accuracy, mean ± sd over the seeds;
- searches: the best architecture's score (and its benchmark-table accuracy where the path has a table), and
  Kendall τ-b between the two settings' scores of the same candidates (how much the precision reorders them).

    python bench/precision_paths.py [--paths retrain_digits,random_digits,...] [--seeds 3,4,5]
        [--out bench/precision_paths.json]

A path that needs the shared CIFAR-10 JPEG copy or the NB201 table is skipped (and listed as skipped) when they are
absent.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from scipy import stats

from nascli import atomic
from nascli.precision import cpu_has_bf16

SHARED = Path(os.environ.get("NASCLI_SHARED", Path(__file__).resolve().parents[2] / "shared"))
CIFAR = SHARED / "datasets" / "cifar10-jpeg.tar.gz"
NB201_TABLE = SHARED / "benchmarks" / "nb201" / "nb201_cifar10.csv"

SETTINGS = {
    "float32": ["device.amp=off", "device.channels_last=false"],  # what every path ran in before issue 31
    "auto": [],  # the defaults: device.amp=auto device.channels_last=auto
}
CIFAR_16 = ["dataset=cifar10_jpeg", f"dataset.root={CIFAR}", "dataset.subset=5000", "dataset.resize=16"]

# name -> (nas arguments, seeds, what is compared, shared files it needs)
PATHS = {
    "retrain_digits": (["retrain", "darts:DARTS_V2"], [0, 1, 2], "retrain", []),
    "retrain_cifar16": (["retrain", "darts:DARTS_V2", *CIFAR_16, "budget.epochs=5"], [0, 1, 2], "retrain", [CIFAR]),
    "random_digits": (["search"], [0], "search", []),
    "pnas_digits": (["search", "strategy=pnas"], [0], "search", []),
    "smash_digits": (["search", "strategy=smash"], [0], "search", []),
    "snas_digits": (["search", "strategy=snas"], [0, 1], "search", []),
    "snas_nb201_cifar": (["search", "strategy=snas", "space=nb201", "dataset=cifar10_jpeg", f"dataset.root={CIFAR}",
                          "dataset.subset=10000", "strategy.epochs=8", "strategy.batch_size=64",
                          "strategy.penalty.preset=none", "strategy.alpha_weight_decay=1e-3", "budget.candidates=8",
                          f"benchmark.table={NB201_TABLE}"], [0, 1, 2], "search", [CIFAR, NB201_TABLE]),
}


def run_nas(args: list[str], root: Path) -> tuple[Path, float]:
    """One `nas` command as a user runs it: default threads (a lone retrain all cores, a search's candidates one
    thread each on `executor.workers=auto` workers)."""
    env = {**os.environ, "NASCLI_PROGRESS": "0"}
    env.pop("OMP_NUM_THREADS", None)
    started = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "nascli", *args, "--run-root", str(root)], capture_output=True,
                         text=True, env=env)
    seconds = time.perf_counter() - started
    if res.returncode != 0:
        raise RuntimeError(f"nas {' '.join(args)} failed:\n{res.stderr[-2000:]}")
    (run,) = [p for p in (root / args[0]).iterdir() if p.is_dir()]
    return run, seconds


def outcome(run: Path, kind: str) -> dict:
    manifest = json.loads((run / "manifest.json").read_text())
    out = {"run": run.name, "precision": manifest.get("precision")}
    if kind == "retrain":
        result = json.loads((run / "result.json").read_text())
        out.update(test_acc=result["test_acc"], val_acc=result["val_acc"])
    else:
        summary = manifest["summary"]
        archs = pd.read_csv(run / "archs.csv")
        out.update(best_arch_id=summary["best_arch_id"], best_score=summary["best_score"],
                   best_truth=summary.get("best_truth"),
                   scores=dict(zip(archs["arch_id"], archs["score"], strict=True)))
    return out


def measure(name: str, work: Path, seeds: list[int] | None = None) -> dict:
    args, default_seeds, kind, needs = PATHS[name]
    seeds = seeds or default_seeds
    missing = [str(p) for p in needs if not p.exists()]
    if missing:
        return {"path": name, "skipped": f"missing {', '.join(missing)}"}
    runs: dict[str, list[dict]] = {s: [] for s in SETTINGS}
    for i, seed in enumerate(seeds):
        order = list(SETTINGS) if i % 2 == 0 else list(SETTINGS)[::-1]
        for setting in order:
            root = Path(tempfile.mkdtemp(dir=work, prefix=f"{name}_{setting}_{seed}_"))
            run, seconds = run_nas([*args, f"seed={seed}", *SETTINGS[setting]], root)
            runs[setting].append({"seed": seed, "seconds": round(seconds, 1), **outcome(run, kind)})
            print(f"{name} seed {seed} {setting}: {seconds:.0f} s", flush=True)
    row = {"path": name, "command": "nas " + " ".join(args), "seeds": seeds,
           "runs": runs, "chosen": runs["auto"][0]["precision"]}
    wall = {s: sum(r["seconds"] for r in rs) for s, rs in runs.items()}
    row["wall_seconds"] = wall
    row["speedup_vs_float32"] = round(wall["float32"] / wall["auto"], 3)
    if kind == "retrain":
        for s, rs in runs.items():
            accs = [r["test_acc"] for r in rs]
            row[f"test_acc_{s}"] = {"mean": statistics.mean(accs), "sd": statistics.stdev(accs) if len(accs) > 1
                                    else None, "values": accs}
    else:
        taus = []
        for a, b in zip(runs["float32"], runs["auto"], strict=True):
            common = sorted(set(a["scores"]) & set(b["scores"]))
            x, y = [a["scores"][k] for k in common], [b["scores"][k] for k in common]
            taus.append({"seed": a["seed"], "n": len(common), "candidates": [len(a["scores"]), len(b["scores"])],
                         "kendall_tau_b": stats.kendalltau(x, y, variant="b").statistic if len(common) > 1
                         else None, "same_best": a["best_arch_id"] == b["best_arch_id"]})
        row["between_settings"] = taus
    for rs in runs.values():  # the per-candidate scores are in the run directories; keep the file small
        for r in rs:
            r.pop("scores", None)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--out", type=Path, default=Path("bench/precision_paths.json"))
    parser.add_argument("--work", type=Path, default=None, help="where the runs go (default: a temporary folder)")
    parser.add_argument("--seeds", default=None, help="these seeds (a,b,c) instead of each path's own")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    work = args.work or Path(tempfile.mkdtemp(prefix="nascli_precision_paths_"))
    work.mkdir(parents=True, exist_ok=True)
    previous = json.loads(args.out.read_text())["results"] if args.out.exists() else []
    results = {r["path"]: r for r in previous}
    for name in args.paths.split(","):
        results[name] = measure(name, work, seeds)
        print(json.dumps({k: v for k, v in results[name].items() if k != "runs"}, default=str), flush=True)
        atomic.write_json(args.out, {  # after every path: a long bench keeps what it measured
            "benchmark": "whole paths, device.amp/channels_last=auto vs float32 NCHW, alternating fresh processes",
            "cores": os.cpu_count(), "cpu_bf16": cpu_has_bf16(), "torch": torch.__version__,
            "python": platform.python_version(), "runs_under": str(work), "results": list(results.values())})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
