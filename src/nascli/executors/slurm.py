"""`executor=slurm`: each task is a submitit job of one job array, on SLURM or on this machine.

`executor.cluster=null` lets submitit pick (SLURM where `sbatch` exists), `slurm` insists on it, `local` runs
the jobs as local processes (a workstation, or the tests), `debug` in this process. What every task shares is
written once to `executor.folder` and read by each job, not pickled into every job. Install with
`pip install 'nascli[slurm]'`.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nascli.executors.base import Executor, attempt, register_executor
from nascli.registry import require


@dataclass
class SlurmExecutorConfig:
    name: str = "slurm"
    cluster: str | None = None  # null: auto (slurm if available) | slurm | local | debug
    partition: str | None = None
    timeout_min: int = 60
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    array_parallelism: int = 16  # jobs of the array running at once
    folder: str = "runs/slurm"  # submitit's logs and pickles (one sub-folder per sweep)
    retries: int = 1
    poll_s: float = 1.0


@register_executor("slurm")
class SlurmExecutor(Executor):
    Config = SlurmExecutorConfig

    def __init__(self, cfg, threads: int | None, gpus: list[str] | None = None):
        super().__init__(cfg, threads, gpus)  # GPUs are the engine's to place (gpus_per_task / gpus_per_node)
        self.submitit = require("submitit", "slurm", "slurm")

    @property
    def workers(self) -> int:
        return int(self.cfg.array_parallelism)

    def threads_per_worker(self) -> int | None:
        return self.requested_threads or max(int(self.cfg.cpus_per_task), 1)

    def run(self, fn: Callable[[Any, Any], Any], shared: Any, tasks: list[Any]) -> Iterator[tuple[int, Any]]:
        folder = Path(self.cfg.folder).expanduser() / time.strftime("%Y-%m-%d_%H-%M-%S")
        folder.mkdir(parents=True, exist_ok=True)
        shared_path = folder / "shared.pkl"
        with open(shared_path, "wb") as fh:
            pickle.dump((fn, shared), fh)
        executor = self.submitit.AutoExecutor(folder=str(folder / "%j"), cluster=self.cfg.cluster)
        params = {"timeout_min": int(self.cfg.timeout_min), "cpus_per_task": int(self.cfg.cpus_per_task),
                  "gpus_per_node": int(self.cfg.gpus_per_node),
                  "slurm_array_parallelism": int(self.cfg.array_parallelism)}
        if self.cfg.partition:
            params["slurm_partition"] = str(self.cfg.partition)
        executor.update_parameters(**params)
        n = len(tasks)
        jobs = executor.map_array(_slurm_task, [str(shared_path)] * n, tasks, [self.threads_per_worker()] * n,
                                  [int(self.cfg.retries)] * n)
        pending = dict(enumerate(jobs))
        try:
            while pending:
                finished = [i for i, job in pending.items() if job.done()]
                for i in finished:
                    yield i, pending.pop(i).result()
                if pending and not finished:
                    time.sleep(float(self.cfg.poll_s))
        finally:
            for job in pending.values():
                job.cancel(check=False)


_SHARED: dict[str, Any] = {}


def _slurm_task(shared_path: str, task, threads: int | None, retries: int):
    import torch

    if threads:
        torch.set_num_threads(threads)
    if _SHARED.get("path") != shared_path:  # one read per worker process, not per task
        with open(shared_path, "rb") as fh:
            _SHARED.update(path=shared_path, value=pickle.load(fh))
    fn, shared = _SHARED["value"]
    return attempt(fn, shared, task, retries)
