"""The executor interface and its registry.

An executor runs one function over many independent tasks (chunks of architectures to score,
candidates to train) and hands each result back as it finishes. Nothing about the results may
depend on where or in which order tasks ran: a task carries everything it needs (seeds included).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from nascli.errors import UserError
from nascli.registry import load_plugins, lookup, registrar

EXECUTORS: dict[str, type[Executor]] = {}
register_executor = registrar(EXECUTORS)

BUILTIN_EXECUTOR_MODULES = ("nascli.executors.local", "nascli.executors.ray_cluster", "nascli.executors.slurm")


@dataclass
class TaskFailure:
    """A task that raised on every attempt: the caller marks its candidate failed and the sweep goes on."""

    error: str
    attempts: int


def attempt(fn: Callable[[Any, Any], Any], shared: Any, task: Any, retries: int) -> Any:
    """fn(shared, task), tried 1 + `retries` times. Bad input (UserError) is not retried: it would fail
    the same way every time, and the user must see it."""
    error = ""
    for _ in range(int(retries) + 1):
        try:
            return fn(shared, task)
        except UserError:
            raise
        except Exception as e:  # a task's failure is a result of the sweep, not the end of it
            error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return TaskFailure(error, int(retries) + 1)


def usable_cores() -> int:
    """Cores this process may run on (a container or `taskset` may allow fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Executor(ABC):
    Config: ClassVar[type]  # dataclass schema of this executor's config group

    def __init__(self, cfg, threads: int | None, gpus: list[str] | None = None):
        self.cfg = cfg
        self.requested_threads = threads  # device.threads, if the user set it
        self.gpus = list(gpus or [])  # GPUs a pool hands out, one per worker (empty on the CPU)

    @property
    @abstractmethod
    def workers(self) -> int:
        """How many tasks run at once."""

    @abstractmethod
    def threads_per_worker(self) -> int | None:
        """Intra-op threads each worker uses (None: torch's default, in-process only)."""

    @abstractmethod
    def run(self, fn: Callable[[Any, Any], Any], shared: Any, tasks: list[Any]) -> Iterator[tuple[int, Any]]:
        """Yield (task index, fn(shared, task)) as tasks finish, or a TaskFailure for a task that raised on
        every attempt (`executor.retries`). `fn` must be a module-level function and `shared` picklable:
        it is sent to each worker once."""

    def describe(self) -> dict:
        out = {"name": self.cfg.name, "workers": self.workers, "threads_per_worker": self.threads_per_worker()}
        if self.gpus:
            out["gpus"] = self.gpus
        return out


def load_executor_plugins() -> None:
    load_plugins("nascli.executors", BUILTIN_EXECUTOR_MODULES)


def executor_class(name: str) -> type[Executor]:
    load_executor_plugins()
    return lookup(EXECUTORS, name, "executor")


def make_executor(cfg, device_cfg) -> Executor:
    threads = getattr(device_cfg, "threads", None)
    return executor_class(cfg.name)(cfg, int(threads) if threads else None, worker_gpus(device_cfg))


def worker_gpus(device_cfg) -> list[str]:
    """The GPUs a pool shares out, one per worker: those visible to this process when the run uses CUDA
    (device=cuda, or auto on a GPU machine). None on the CPU or for a pinned device (cuda:N)."""
    import torch

    kind = str(getattr(device_cfg, "type", "auto"))
    if kind not in ("cuda", "auto") or not torch.cuda.is_available():
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if visible:
        return [v.strip() for v in visible.split(",") if v.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]
