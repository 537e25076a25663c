"""Candidate sweeps on executors: wall time of a random search on every engine, as a ratio to the same
search run one candidate after another in one process (same machine, same session, one after another).

    python bench/executors.py --out bench/results.json

Each configuration is a fresh `nas search` process (its start-up included, as a user sees it). Every run
must write the same archs.csv as the sequential one; the script stops if it does not. The section
`executors` of the output JSON is replaced, the rest of the file (other benchmarks) is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

from nas_process import run_nas

SEARCH = ["search", "strategy=random", "dataset=digits"]  # the default budget: 16 candidates, 3 epochs each
ENGINES = {
    "local, workers=1 (sequential, 1 thread per candidate)": ["executor.workers=1"],
    "local, workers=2 (1 thread each)": ["executor.workers=2"],
    "ray, local cluster of 2 CPUs": ["executor=ray", "executor.num_cpus=2"],
    "slurm via submitit, cluster=local": ["executor=slurm", "executor.cluster=local", "executor.poll_s=0.5"],
}


def run(args: list[str], root: Path) -> tuple[float, bytes, dict]:
    wall, path, manifest = run_nas(args, root)
    return wall, (path / "archs.csv").read_bytes(), manifest


SNAS = ["search", "strategy=snas", "dataset=digits", "budget=smoke", "budget.max_batches=null"]


def supernet_ddp() -> dict:
    """SNAS search time, 2 gloo ranks x 1 thread under torchrun vs 1 process x 2 threads."""
    rows = []
    for label, launcher, threads in (("1 process x 2 threads", [], 2),
                                     ("torchrun 2 gloo ranks x 1 thread", ["-m", "torch.distributed.run",
                                                                           "--nproc-per-node", "2"], 1)):
        with tempfile.TemporaryDirectory() as root:
            wall, _, manifest = run_nas([*SNAS, f"device.threads={threads}"], Path(root), launcher=launcher)
        rows.append({"setting": label, "search_s": manifest["summary"]["search_seconds"], "wall_s": round(wall, 1),
                     "distributed": manifest.get("distributed")})
        print(json.dumps(rows[-1]), flush=True)
    rows[1]["speedup_search"] = round(rows[0]["search_s"] / rows[1]["search_s"], 2)
    return {"what": "SNAS smoke search, one full digits epoch (36 steps of batch 32) plus its evaluations",
            "command": "nas " + " ".join(SNAS), "results": rows}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench/results.json"))
    parser.add_argument("--only", choices=("executors", "ddp"), default=None)
    opts = parser.parse_args()
    if opts.only == "ddp":
        doc = json.loads(opts.out.read_text()) if opts.out.exists() else {}
        doc["supernet_ddp"] = supernet_ddp()
        opts.out.write_text(json.dumps(doc, indent=2) + "\n")
        return
    rows, reference = [], None
    for label, engine in ENGINES.items():
        with tempfile.TemporaryDirectory() as root:
            extra = [f"executor.folder={root}/submitit"] if "slurm" in label else []
            wall, archs, manifest = run([*SEARCH, *engine, *extra], Path(root))
        if reference is None:
            reference = (wall, archs)
        if archs != reference[1]:
            raise SystemExit(f"{label}: archs.csv differs from the sequential run")
        summary = manifest["summary"]
        rows.append({"engine": label, "command": "nas " + " ".join([*SEARCH, *engine]), "wall_s": round(wall, 1),
                     "search_s": summary["search_seconds"], "speedup_wall": round(reference[0] / wall, 2),
                     "best_score": summary["best_score"], "archs_csv_identical": True})
        print(json.dumps(rows[-1]), flush=True)
    doc = json.loads(opts.out.read_text()) if opts.out.exists() else {}
    doc["supernet_ddp"] = supernet_ddp()
    doc["executors"] = {"what": "random search on digits, default budget (16 candidates x 3 epochs), wall time of "
                                "the whole `nas search` process vs sequential", "machine": platform.machine(),
                        "cores": os.cpu_count(), "results": rows}
    opts.out.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
