"""Run one `nas` command as a user would (a fresh process, no progress bars) for the benchmarks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def run_nas(args: list[str], root: Path, launcher: list[str] | None = None) -> tuple[float, Path, dict]:
    """(wall seconds including start-up, the run directory, its manifest); exits if the command fails.
    `launcher`: python arguments before `-m nascli` (e.g. torch.distributed.run's)."""
    env = {**os.environ, "NASCLI_PROGRESS": "0", **({"OMP_NUM_THREADS": "1"} if launcher else {})}
    started = time.perf_counter()
    res = subprocess.run([sys.executable, *(launcher or []), "-m", "nascli", *args, "--run-root", str(root)],
                         capture_output=True,
                         text=True, env=env)
    wall = time.perf_counter() - started
    if res.returncode != 0:
        raise SystemExit(f"nas {' '.join(args)} failed:\n{res.stderr}")
    (run,) = list((Path(root) / args[0]).iterdir())
    return wall, run, json.loads((run / "manifest.json").read_text())
