"""`executor=local`: tasks in this process one after another, or in a pool of spawned worker processes.

The pool is concurrent.futures' ProcessPoolExecutor with the spawn start method (fork would copy
torch's thread pools into the children). Each worker sets its intra-op threads so that
workers x threads <= the usable cores: two processes of two threads on two cores measured ~7x slower
per task than one thread each. On a GPU machine each worker gets one GPU of its own (CUDA_VISIBLE_DEVICES set
before CUDA starts in the worker), and `workers=auto` starts no more workers than there are GPUs.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nascli.errors import UserError
from nascli.executors.base import Executor, attempt, register_executor, usable_cores


@dataclass
class LocalExecutorConfig:
    name: str = "local"
    workers: str = "auto"  # 1: in this process; N: a pool of N worker processes; auto: usable cores / threads
    retries: int = 1  # a task that raises is tried again this many times, then marked failed


@register_executor("local")
class LocalExecutor(Executor):
    Config = LocalExecutorConfig

    def __init__(self, cfg, threads: int | None, gpus: list[str] | None = None):
        super().__init__(cfg, threads, gpus)
        raw = str(cfg.workers).strip().lower()
        if raw == "auto":
            self._workers = max(1, usable_cores() // (threads or 1))
            if self.gpus:  # one GPU per worker: two trainings on one GPU would only queue behind each other
                self._workers = min(self._workers, len(self.gpus))
        elif raw.isdigit() and int(raw) >= 1:
            self._workers = int(raw)
        else:
            raise UserError(f"executor.workers={cfg.workers} is not a worker count; use a positive integer or auto")

    @property
    def workers(self) -> int:
        return self._workers

    def threads_per_worker(self) -> int | None:
        if self._workers == 1:
            return self.requested_threads
        return self.requested_threads or max(1, usable_cores() // self._workers)

    def run(self, fn: Callable[[Any, Any], Any], shared: Any, tasks: list[Any]) -> Iterator[tuple[int, Any]]:
        retries = int(self.cfg.get("retries", 1))
        if self._workers == 1 or len(tasks) <= 1:
            for i, task in enumerate(tasks):
                yield i, attempt(fn, shared, task, retries)
            return
        context = multiprocessing.get_context("spawn")
        started = context.Value("i", 0)  # the workers number themselves to pick their GPU
        pool = ProcessPoolExecutor(max_workers=min(self._workers, len(tasks)), mp_context=context,
                                   initializer=_init_worker,
                                   initargs=(fn, shared, self.threads_per_worker(), retries, self.gpus, started))
        try:
            # Keep a bounded number of tasks in flight so results stream back in roughly task order.
            pending, queue = {}, list(enumerate(tasks))[::-1]
            while queue or pending:
                while queue and len(pending) < 2 * self._workers:
                    i, task = queue.pop()
                    pending[pool.submit(_run_task, task)] = i
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield pending.pop(future), future.result()
        except BrokenProcessPool as broken:
            raise UserError(broken_pool_message()) from broken
        finally:
            # On an interrupt, don't wait for the queue: the run's checkpoint has what finished.
            pool.shutdown(wait=True, cancel_futures=True)


SCRIPT_GUARD = ('a script that calls nascli must make its calls under `if __name__ == "__main__":` (worker '
                'processes import the script again before they take tasks)')


def importing_main_in_a_worker() -> bool:
    """Whether this process is a spawned worker still importing the parent's main script: the moment an
    unguarded nascli call in a script would start the whole command again. multiprocessing's own check for
    this state reads the same flag."""
    return bool(getattr(multiprocessing.current_process(), "_inheriting", False))


def broken_pool_message() -> str:
    """Why the pool broke, as far as the parent can tell: a main script without a `__main__` guard (its workers
    stop on purpose, see nascli.api), else a worker that died (the kernel's OOM killer, most often)."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    try:
        unguarded = path is not None and "__main__" not in Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        unguarded = False
    if unguarded:
        return f"a worker process of executor=local stopped while starting: {path} has no __main__ guard; {SCRIPT_GUARD}"
    return ("a worker process of executor=local died before it finished its task (killed for memory?); "
            "run with fewer workers (executor.workers=1) or a smaller budget")


_WORKER: dict[str, Any] = {}


def _init_worker(fn, shared, threads: int | None, retries: int, gpus: list[str], started) -> None:
    # Ctrl-C reaches the whole process group: only the parent decides how the run stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    if gpus:
        with started.get_lock():
            number = started.value
            started.value += 1
        # Before anything touches CUDA in this process: "cuda" then means this worker's own GPU.
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[number % len(gpus)]
    if threads:
        torch.set_num_threads(threads)
    _WORKER.update(fn=fn, shared=shared, retries=retries)


def _die_with_parent() -> None:
    """A parent killed outright (SIGKILL, OOM) cannot shut its pool down: on Linux the kernel then kills the
    workers (PR_SET_PDEATHSIG) instead of leaving them to finish tasks nobody will collect."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: orphaned workers finish their task and exit when the queue is gone


def _run_task(task):
    return attempt(_WORKER["fn"], _WORKER["shared"], task, _WORKER["retries"])
