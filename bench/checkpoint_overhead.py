"""Resume checkpoints: time spent saving them as a fraction of the run, at the default settings.

Each command runs once in its own process (default budget and `checkpoint.every_s`, digits), and the run's
own accounting is read back: the manifest's summary holds `checkpoints` (how many were written) and
`checkpoint_seconds` (time gathering and writing them), next to the search or training time.

    python bench/checkpoint_overhead.py --out bench/checkpoint_overhead.json [--only random,snas]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

from nas_process import run_nas

COMMANDS = {
    "random": ["search", "strategy=random", "dataset=digits"],
    "snas": ["search", "strategy=snas", "dataset=digits"],
    "pnas": ["search", "strategy=pnas", "dataset=digits"],
    "smash": ["search", "strategy=smash", "dataset=digits"],
    "retrain": ["retrain", "darts:DARTS_V2", "dataset=digits"],
}


def measure(name: str, args: list[str], root: Path) -> dict:
    wall, _, manifest = run_nas(args, root)
    kind = args[0]
    summary = manifest["summary"]
    worked = summary["search_seconds"] if kind == "search" else summary["train_seconds"]
    return {"name": name, "command": "nas " + " ".join(args), "checkpoints": summary["checkpoints"],
            "checkpoint_seconds": summary["checkpoint_seconds"], "work_seconds": worked,
            "overhead_fraction": round(summary["checkpoint_seconds"] / worked, 5), "process_wall_s": round(wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench/checkpoint_overhead.json"))
    parser.add_argument("--only", default=",".join(COMMANDS))
    opts = parser.parse_args()
    rows = []
    for name in opts.only.split(","):
        with tempfile.TemporaryDirectory() as root:
            rows.append(measure(name, COMMANDS[name], Path(root)))
            print(json.dumps(rows[-1]), flush=True)
    # --only re-measures some commands: the other rows of an earlier file stay, in their order.
    earlier = json.loads(opts.out.read_text())["results"] if opts.out.exists() else []
    fresh = {r["command"]: r for r in rows}
    merged = [fresh.pop(r["command"], r) for r in earlier] + list(fresh.values())
    doc = {"what": "resume checkpoint overhead at the defaults (checkpoint.every_s=60, one per epoch / candidate)",
           "goal": "overhead_fraction <= 0.03", "machine": platform.machine(), "cores": os.cpu_count(),
           "results": merged}
    opts.out.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
