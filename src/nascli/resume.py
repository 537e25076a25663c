"""Resumable runs: full-state checkpoints that a killed run continues from, to the same bytes.

A long loop calls `checkpointer.step(build_state)` at every point where its state is consistent (after an
optimiser step, after an evaluated candidate). The checkpointer saves when the period is due, when the loop
says the point is a boundary (end of epoch, a finished candidate), and always when SIGINT / SIGTERM asked
the run to stop; then it raises `Interrupted`. What it saves, besides the loop's own state: every global RNG
(torch CPU and CUDA, numpy, Python `random`) and the length of metrics.jsonl, so that a resumed run cuts the
records logged after the checkpoint instead of logging them twice.

The file is `MAGIC + sha256 + torch.save(payload)`: a torn or corrupt write is detected by the checksum, and
the previous good checkpoint (kept beside it) is used instead.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nascli.atomic import write_bytes
from nascli.errors import UserError

MAGIC = b"NASCLI-RESUME/1\n"
# A test hook: the process kills itself (SIGKILL) right after its Nth checkpoint, so a crash test lands
# on a chosen, reproducible point instead of a race against a timer.
KILL_ENV = "NASCLI_KILL_AFTER_CHECKPOINTS"


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM asked the run to stop; the last checkpoint is written."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_requested: dict[str, int | None] = {"signal": None}
_process_saves = [0]  # checkpoints written by this process, over every run it writes (the kill hook counts these)


def stop_requested() -> int | None:
    return _requested["signal"]


def check_stop() -> None:
    """Raise Interrupted if a signal asked to stop (called where no state needs saving first)."""
    if _requested["signal"] is not None:
        raise Interrupted(_requested["signal"])


@contextmanager
def graceful_signals() -> Iterator[None]:
    """SIGINT / SIGTERM set a flag that the next checkpoint point honours (save, then stop); a second
    signal stops at once."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # a worker thread (e.g. a Ray task) cannot own signals; its driver decides how the run stops
        return
    previous = {}

    def handler(signum, frame):
        del frame
        if _requested["signal"] is not None:
            raise Interrupted(signum)
        _requested["signal"] = signum

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        _requested["signal"] = None


# -- RNGs -------------------------------------------------------------------------------------------
def capture_rng() -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
             "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate(as_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def as_tuples(obj):
    # random.setstate wants tuples; a round trip through the checkpoint may give lists.
    return tuple(as_tuples(x) for x in obj) if isinstance(obj, (list, tuple)) else obj


# -- the file ---------------------------------------------------------------------------------------
def write_resume(path: Path, payload: dict) -> None:
    """Atomically replace `path`, keeping the one before it as <name>.prev."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()
    blob = MAGIC + hashlib.sha256(data).hexdigest().encode() + b"\n" + data
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        os.replace(path, previous_of(path))
    write_bytes(path, blob)


def previous_of(path: Path) -> Path:
    return path.with_name(path.name + ".prev")


def _read_one(path: Path) -> dict:
    blob = path.read_bytes()
    if not blob.startswith(MAGIC):
        raise ValueError("not a nascli resume checkpoint")
    head, _, data = blob[len(MAGIC):].partition(b"\n")
    if hashlib.sha256(data).hexdigest().encode() != head:
        raise ValueError("checksum mismatch: the file is truncated or corrupt")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def read_resume(path: Path) -> tuple[dict | None, str | None]:
    """The newest good checkpoint (and a warning when the newest was bad), or (None, None) if there is
    none yet. A run with only bad checkpoints cannot be resumed: UserError."""
    problems = []
    for candidate in (path, previous_of(path)):
        if not candidate.exists():
            continue
        try:
            payload = _read_one(candidate)
        except Exception as e:  # torch / pickle raise many types on damaged data
            problems.append(f"{candidate.name}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
            continue
        warning = f"{problems[0]}; resumed from the previous checkpoint instead" if problems else None
        return payload, warning
    if problems:
        raise UserError(f"the run cannot be resumed: {'; '.join(problems)}; start it again with the same "
                        "command (same seed, same result)")
    return None, None


def discard_resume(run) -> None:
    """A finished run needs no resume state (it can be as large as a supernet)."""
    path = run.checkpoint(run.RESUME_CKPT)
    for p in (path, previous_of(path)):
        p.unlink(missing_ok=True)


def take_over(run, cfg, extended: dict, notify: Callable[[str], None]) -> dict:
    """Make this process the writer of an interrupted run: its newest good checkpoint's payload ({} when it
    died before the first), with a skipped damaged checkpoint and any budget extension recorded."""
    from omegaconf import OmegaConf

    from nascli.atomic import write_text

    saved, warning = read_resume(run.checkpoint(run.RESUME_CKPT))
    run.reopen_for_resume()
    if warning:
        notify(warning)
        run.update_manifest(resume_warnings=[*run.manifest.get("resume_warnings", []), warning])
    if extended:
        write_text(run.path / run.CONFIG, OmegaConf.to_yaml(cfg))
        run.update_manifest(resume_extended=[*run.manifest.get("resume_extended", []), extended])
    return saved or {}


# -- the saver --------------------------------------------------------------------------------------
class Checkpointer:
    """Saves a loop's state into checkpoints/resume.pt: periodically, at boundaries, and on a stop signal."""

    def __init__(self, run, every_s: float, saves_before: int = 0, enabled: bool = True):
        self.run = run
        self.enabled = enabled
        self.every_s = float(every_s)
        self.saves = 0  # in this process
        self.total = int(saves_before)  # over the run's life, across resumes
        self.seconds_saving = 0.0
        self._last = time.monotonic()

    @property
    def path(self) -> Path:
        return self.run.checkpoint(self.run.RESUME_CKPT)

    def step(self, build: Callable[[], dict], boundary: bool = False) -> None:
        """A consistent point of the loop: save if due, and stop here if a signal asked to."""
        stop = stop_requested()
        due = stop is not None or boundary or time.monotonic() - self._last >= self.every_s
        if self.enabled and due:
            self.save(build)
        if stop is not None:
            raise Interrupted(stop)

    def save(self, build: Callable[[], dict]) -> None:
        started = time.perf_counter()  # the overhead counts gathering the state as well as writing it
        self.total += 1
        write_resume(self.path, {"format": "nascli.resume/1", "state": build(), "rng": capture_rng(),
                                 "metrics_bytes": self.run.metrics_size(), "saves": self.total})
        self.run.heartbeat()
        self.saves += 1
        self._last = time.monotonic()
        self.seconds_saving += time.perf_counter() - started
        _process_saves[0] += 1
        if _process_saves[0] == int(os.environ.get(KILL_ENV, "0") or 0):
            os.kill(os.getpid(), signal.SIGKILL)

    def summary(self) -> dict[str, Any]:
        return {"checkpoints": self.saves, "checkpoint_seconds": round(self.seconds_saving, 3)}
