"""`executor=ray`: each task is a Ray task, on a Ray started for the run or on a running cluster.

`executor.address=null` starts a local Ray for this run (and stops it after); `auto` or `ray://HOST:PORT`
joins a running cluster. Ray schedules the tasks by their resources (`cpus_per_task`, `gpus_per_task`) and
retries tasks whose worker died (`retries`); a task that raises is retried the same number of times, then
returned as failed. Install with `pip install 'nascli[ray]'`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from nascli.executors.base import Executor, attempt, register_executor, usable_cores
from nascli.registry import require


@dataclass
class RayExecutorConfig:
    name: str = "ray"
    address: str | None = None  # null: a local Ray for this run; auto or ray://HOST:PORT: a running cluster
    num_cpus: int | None = None  # local Ray only: CPUs it may use (default: the usable cores)
    cpus_per_task: int = 1
    gpus_per_task: float = 0.0
    retries: int = 1


@register_executor("ray")
class RayExecutor(Executor):
    Config = RayExecutorConfig

    def __init__(self, cfg, threads: int | None, gpus: list[str] | None = None):
        super().__init__(cfg, threads, gpus)  # GPUs are the engine's to place (gpus_per_task / gpus_per_node)
        self.ray = require("ray", "ray", "ray")

    @property
    def workers(self) -> int:
        if self.cfg.address is None:
            return max(1, int(self.cfg.num_cpus or usable_cores()) // max(int(self.cfg.cpus_per_task), 1))
        return 0  # decided by the cluster

    def threads_per_worker(self) -> int | None:
        return self.requested_threads or max(int(self.cfg.cpus_per_task), 1)

    def run(self, fn: Callable[[Any, Any], Any], shared: Any, tasks: list[Any]) -> Iterator[tuple[int, Any]]:
        ray = self.ray
        started_here = not ray.is_initialized()
        if started_here:
            kwargs = {"num_cpus": int(self.cfg.num_cpus or usable_cores())} if self.cfg.address is None else {}
            ray.init(address=self.cfg.address, include_dashboard=False, log_to_driver=False, **kwargs)
        try:
            ref = ray.put(shared)
            remote = ray.remote(_ray_task).options(num_cpus=int(self.cfg.cpus_per_task),
                                                   num_gpus=float(self.cfg.gpus_per_task),
                                                   max_retries=int(self.cfg.retries))
            threads, retries = self.threads_per_worker(), int(self.cfg.retries)
            pending = {remote.remote(fn, ref, task, threads, retries): i for i, task in enumerate(tasks)}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for obj in done:
                    yield pending.pop(obj), ray.get(obj)
        finally:
            if started_here:
                ray.shutdown()


def _ray_task(fn, shared, task, threads: int | None, retries: int):
    import torch

    if threads:
        torch.set_num_threads(threads)
    return attempt(fn, shared, task, retries)
