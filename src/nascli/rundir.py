"""Run directories: one per command, self-describing, written atomically. RunDir is the one place that
knows their layout (the file names below) and the checkpoint format.

    <root>/<kind>/<YYYY-mm-dd_HH-MM-SS>_<label>_<4hex>/
        config.yaml  manifest.json  metrics.jsonl  ...results...  checkpoints/  plots/

    search:    archs.csv ranked.csv arch.json archs/<arch_id>.json checkpoints/strategy.pt
    retrain:   arch.json result.json checkpoints/best.pt checkpoints/last.pt
    search and retrain, while running: checkpoints/resume.pt (+ .prev), the state `--resume` continues from
    rank:      archs.csv ranked.csv archs/<arch_id>.json proxies.json proxy_batches.json (archs.partial.csv
               while running)
    correlate: correlation.json table.csv report.md

manifest.json carries argv, overrides, versions, seed, device, status
(running | done | failed | interrupted), wall time, and while running the pid, host and a heartbeat, so a
run killed with SIGKILL (status still `running`, its process gone) reads as interrupted. A run directory
being written is locked (`.lock`, flock): a second writer is refused.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import secrets
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from nascli import __version__
from nascli.atomic import save_figure, write_csv, write_json, write_text, write_torch
from nascli.errors import UserError

RUN_FORMAT = "nascli.run/1"
CHECKPOINT_FORMAT = "nascli.ckpt/1"
KINDS = ("search", "retrain", "rank", "correlate")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")


def load_checkpoint(path: Path) -> dict:
    """A nascli checkpoint as a dict; UserError if it is unreadable or not ours."""
    import torch

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for truncated or foreign files
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise UserError(f"cannot read checkpoint {path} ({reason}); it is corrupt or not a nascli checkpoint") from None
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path} is not a nascli checkpoint (no '{CHECKPOINT_FORMAT}' format tag)")
    return blob


def versions() -> dict[str, str]:
    out = {"nascli": __version__, "python": platform.python_version(), "platform": platform.platform()}
    # Distribution metadata, not imports: importing torchvision alone costs ~2 s.
    for dist in ("torch", "torchvision", "numpy", "hydra-core", "omegaconf", "typer"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    sha = _git_sha()
    if sha:
        out["nascli_git"] = sha
    return out


def _git_sha() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        res = subprocess.run(["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class RunDir:
    # The layout: every file name of a run directory, named once.
    CONFIG, MANIFEST, METRICS = "config.yaml", "manifest.json", "metrics.jsonl"
    ARCHS, RANKED, PARTIAL, ARCH, ARCH_DIR = "archs.csv", "ranked.csv", "archs.partial.csv", "arch.json", "archs"
    PROXIES, RESULT, CORRELATION = "proxies.json", "result.json", "correlation.json"
    PROXY_BATCHES = "proxy_batches.json"  # which training images the data-dependent proxies of a rank run saw
    LATENCY = "latency.json"  # how a retrained network was timed (its latency_ms and throughput are in result.json too)
    STRATEGY_CKPT, BEST_CKPT, LAST_CKPT, CKPT_DIR = "strategy.pt", "best.pt", "last.pt", "checkpoints"
    RESUME_CKPT, LOCK = "resume.pt", ".lock"
    # A run on another host whose heartbeat is older than this is taken as dead.
    STALE_HEARTBEAT_S = 900

    def __init__(self, path: Path, manifest: dict | None = None):
        self.path = Path(path)
        self.manifest = manifest if manifest is not None else {}
        self._started = time.perf_counter()
        self._lock_fh = None
        self.observers: list = []  # experiment trackers mirroring this run (nascli.tracking)

    # -- creation and lookup ------------------------------------------------------------
    @classmethod
    def create(cls, root: Path, kind: str, label: str, cfg: DictConfig, *, argv: list[str],
               overrides: list[str], device: str, extra: dict | None = None) -> RunDir:
        base = Path(root) / kind
        try:
            base.mkdir(parents=True, exist_ok=True)
            if not os.access(base, os.W_OK):
                raise PermissionError(13, "not writable")
        except OSError as e:
            raise UserError(f"cannot create run directories under {root} ({e.strerror or e}); pass a writable "
                            "folder with --run-root DIR") from None
        stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        label = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in label)
        for _ in range(100):
            path = base / f"{stamp}_{label}_{secrets.token_hex(2)}"
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
        else:
            raise RuntimeError(f"could not create a unique run directory under {base}")
        manifest = {
            "format": RUN_FORMAT, "kind": kind, "name": path.name, "status": "running",
            "argv": list(argv), "overrides": list(overrides), "seed": int(cfg.seed) if "seed" in cfg else None,
            "device": device, "versions": versions(), "started_at": _now(), "ended_at": None,
            "wall_time_s": None, **_process(), **(extra or {}),
        }
        run = cls(path, manifest)
        run.lock()
        write_text(path / "config.yaml", OmegaConf.to_yaml(cfg))
        run._write_manifest()
        return run

    @classmethod
    def open(cls, path: str | Path, kind: str | None = None) -> RunDir:
        path = Path(path)
        manifest_path = path / "manifest.json"
        if not path.is_dir():
            raise UserError(f"run directory {path} does not exist; pass a path under runs/<kind>/")
        if not manifest_path.is_file():
            raise UserError(f"{path} is not a nascli run directory (no manifest.json)")
        try:
            manifest = json.loads(manifest_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"{manifest_path} is not valid JSON ({e}); the run directory is damaged") from None
        if kind and manifest.get("kind") != kind:
            raise UserError(f"{path} is a {manifest.get('kind')} run; pass a {kind} run directory")
        return cls(path, manifest)

    @staticmethod
    def latest(root: Path, kind: str, status: str | None = "done") -> RunDir:
        """The run of `kind` that started last (by the manifest's start time, to the microsecond: run names
        share the second and end in a random suffix)."""
        base = Path(root) / kind
        paths = [p for p in base.glob("*") if (p / "manifest.json").is_file()] if base.is_dir() else []
        runs = []
        for path in paths:
            try:
                runs.append(RunDir.open(path))
            except UserError:
                continue  # a damaged run directory is never "the latest"
        runs.sort(key=lambda r: (str(r.manifest.get("started_at") or ""), r.path.name))
        for run in reversed(runs):
            if status == "done" and run.status == "interrupted":
                run.require_finished()  # the newest run was killed: say so rather than skip to an older one
            if status is None or run.status == status:
                return run
        raise UserError(f"no finished {kind} run under {base}; run `nas {kind}` first or pass a run directory")

    @staticmethod
    def latest_of(root: Path, kinds: tuple[str, ...], status: str | None = "done") -> RunDir | None:
        """The run that started last among several kinds (as `latest` picks within one); None when none has one."""
        found = []
        for kind in kinds:
            try:
                found.append(RunDir.latest(root, kind, status=status))
            except UserError:
                continue
        return max(found, key=lambda r: str(r.manifest.get("started_at") or "")) if found else None

    @classmethod
    def resolve(cls, ref: str | Path, run_root: Path, kind: str | None = None) -> RunDir:
        """`latest` (the newest finished run of `kind`), a run directory's path, or a run's name under
        <run_root>/<kind>/."""
        path = Path(ref).expanduser()
        if str(ref) == "latest" and not path.exists():
            return cls.latest(run_root, kind or "search")
        if not path.exists() and kind and (Path(run_root) / kind / str(ref)).is_dir():
            path = Path(run_root) / kind / str(ref)
        return cls.open(path, kind)

    @classmethod
    def resumable(cls, ref: str, run_root: Path, kind: str, check: bool = True) -> RunDir:
        """The run `--resume` names (`latest`: the newest run of `kind`, finished or not); `check=False` skips
        the is-it-free check (torchrun's other ranks, which look after rank 0 has taken the run over)."""
        if ref == "latest" and not Path(ref).exists():
            run = cls.latest(run_root, kind, status=None)
        else:
            run = cls.resolve(ref, run_root, kind)
        if not check:
            return run
        status = run.status
        if status == "done":
            raise UserError(f"run {run.path} already finished; nothing to resume (its results are in place)")
        if status == "running":
            raise UserError(f"run {run.path} is in use by pid {run.manifest.get('pid')} on "
                            f"{run.manifest.get('host')}; wait for it to finish or stop it")
        return run

    # -- liveness ---------------------------------------------------------------------------
    @property
    def status(self) -> str:
        """The manifest's status, except that a `running` run whose process is gone is `interrupted`."""
        status = self.manifest.get("status")
        if status != "running":
            return str(status)
        pid, host = self.manifest.get("pid"), self.manifest.get("host")
        if host == socket.gethostname() and isinstance(pid, int):
            return "running" if _alive(pid) else "interrupted"
        beat = self.manifest.get("heartbeat") or self.manifest.get("started_at")
        try:
            age = (datetime.now(timezone.utc) - datetime.fromisoformat(beat)).total_seconds()
        except (TypeError, ValueError):
            return "running"
        return "interrupted" if age > self.STALE_HEARTBEAT_S else "running"

    def resume_command(self) -> str:
        world = int((self.manifest.get("distributed") or {}).get("world_size", 1))
        if world > 1:  # a data-parallel run resumes with its ranks
            return f"torchrun --nproc-per-node {world} -m nascli {self.manifest.get('kind')} --resume {self.path}"
        return f"nas {self.manifest.get('kind')} --resume {self.path}"

    def require_finished(self) -> None:
        """Readers (rank, correlate, retrain of a run's archs) use finished runs only."""
        status = self.status
        if status == "interrupted":
            raise UserError(f"run {self.path} was interrupted (resumable: {self.resume_command()}); resume it "
                            "or pass another run")
        if status == "running":
            raise UserError(f"run {self.path} is still running (pid {self.manifest.get('pid')} on "
                            f"{self.manifest.get('host')}); wait for it or pass a finished run")

    def lock(self) -> None:
        """Hold .lock for as long as this process writes the run (released when it exits, even by SIGKILL)."""
        fh = open(self.path / self.LOCK, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            owner = fh.read().strip() or "another process"
            fh.close()
            raise UserError(f"run {self.path} is in use by {owner}; wait for it to finish or stop it") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        fh.flush()
        self._lock_fh = fh

    def heartbeat(self) -> None:
        self.update_manifest(heartbeat=_now())

    def reopen_for_resume(self) -> None:
        """Take the run over in this process: lock it and mark it running again."""
        self.lock()
        self._started = time.perf_counter()
        resumes = [*self.manifest.get("resumed_at", []), _now()]
        self.update_manifest(status="running", ended_at=None, error=None, resume=None, resumed_at=resumes,
                             **_process())

    def metrics_size(self) -> int:
        path = self.path / self.METRICS
        return path.stat().st_size if path.exists() else 0

    def truncate_metrics(self, size: int) -> None:
        """Drop the records logged after a checkpoint: the resumed run logs them again."""
        path = self.path / self.METRICS
        if path.exists():
            with open(path, "r+b") as fh:
                fh.truncate(size)

    @staticmethod
    def kind_of(path: str | Path) -> str:
        """What kind of run a directory holds (search, retrain, ...), or "source" if it cannot tell."""
        try:
            return json.loads((Path(path) / "manifest.json").read_text()).get("kind") or "source"
        except (json.JSONDecodeError, OSError, UnicodeDecodeError):
            return "source"

    @property
    def config(self) -> DictConfig:
        return OmegaConf.load(self.path / "config.yaml")

    # -- writing ----------------------------------------------------------------------
    def _write_manifest(self) -> None:
        write_json(self.path / "manifest.json", self.manifest)

    def update_manifest(self, **fields: Any) -> None:
        self.manifest.update(fields)
        self._write_manifest()

    def log(self, **record: Any) -> None:
        """Append one JSON line to metrics.jsonl (each line is written in one call)."""
        record = {"time": round(time.perf_counter() - self._started, 3), **record}
        with open(self.path / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record, default=_plain) + "\n")
        self._notify("record", record)

    def _notify(self, method: str, *args) -> None:
        """Tell the trackers; one that fails is dropped with a warning: the run directory is the record."""
        for observer in list(self.observers):
            try:
                getattr(observer, method)(*args)
            except Exception as e:  # a tracker's server or disk trouble must not end the experiment
                self.observers.remove(observer)
                print(f"nas: warning: tracker {type(observer).__name__} failed ({type(e).__name__}: {e}); "
                      "the run goes on without it", file=sys.stderr)

    def write_json(self, rel: str, obj: Any) -> Path:
        return write_json(self.path / rel, obj)

    def write_text(self, rel: str, text: str) -> Path:
        return write_text(self.path / rel, text)

    def write_csv(self, rel: str, frame) -> Path:
        return write_csv(self.path / rel, frame)

    def append_csv(self, rel: str, frame) -> Path:
        """Append rows to a CSV as a run goes (header on first write), flushed to disk each call, so a
        killed run keeps what it had finished."""
        path = self.path / rel
        new = not path.exists()
        with open(path, "a", newline="") as fh:
            frame.to_csv(fh, header=new, index=False)
            fh.flush()
            os.fsync(fh.fileno())
        return path

    def save_checkpoint(self, rel: str, obj: Any) -> Path:
        """checkpoints/<rel>, tagged with the checkpoint format so load_checkpoint can tell it is ours."""
        return write_torch(self.checkpoint(rel), {"format": CHECKPOINT_FORMAT, **obj})

    # -- the layout's files ----------------------------------------------------------------
    def checkpoint(self, name: str) -> Path:
        return self.path / self.CKPT_DIR / name

    def arch_file(self, arch_id: str) -> Path:
        return self.path / self.ARCH_DIR / f"{arch_id}.json"

    def write_arch(self, arch_id: str, doc: dict) -> Path:
        return self.write_json(f"{self.ARCH_DIR}/{arch_id}.json", doc)

    def read_frame(self, name: str, required: tuple[str, ...] = ("arch_id",)):
        """archs.csv / ranked.csv as a DataFrame (arch_id kept as text)."""
        return read_results_csv(self.path / name, required)

    def write_results(self, frame, ranked) -> None:
        self.write_csv(self.ARCHS, frame)
        self.write_csv(self.RANKED, ranked)

    def save_plot(self, rel: str, fig) -> Path:
        return save_figure(self.path / "plots" / rel, fig)

    def elapsed(self) -> float:
        return time.perf_counter() - self._started

    # -- status -----------------------------------------------------------------------
    def finish(self, status: str, error: str | None = None) -> None:
        fields = {"status": status, "ended_at": _now(), "wall_time_s": round(self.elapsed(), 3)}
        if error:
            fields["error"] = error
        self.update_manifest(**fields)

    @contextmanager
    def running(self):
        """Mark the run done, failed or interrupted depending on how the block ends."""
        try:
            yield self
        except KeyboardInterrupt as e:
            self.finish("interrupted")
            self.update_manifest(resume=self.resume_command())
            e.resume_command = self.resume_command()
            raise
        except BaseException as e:
            self.finish("failed", error=f"{type(e).__name__}: {e}")
            raise
        else:
            self.finish("done")
        finally:
            self._notify("close", self)


def read_results_csv(path: Path, required: tuple[str, ...] = ("arch_id",)):
    """A results CSV of a run (archs.csv, ranked.csv); UserError when it is unreadable or lacks a column."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype={"arch_id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {path} as CSV ({_first(e)}); the run directory is damaged: re-run the "
                        "command that wrote it") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise UserError(f"{path} has no {', '.join(missing)} column; it was edited or is not a nascli results "
                        "file: restore it or re-run the command that wrote it")
    return frame


def _first(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _process() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "heartbeat": _now()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _plain(obj: Any):
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def command_line() -> list[str]:
    return ["nas", *sys.argv[1:]]
