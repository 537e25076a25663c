"""Atomic file writes: write to a temp file in the same folder, fsync, rename.

A reader (or a crash) never sees half a results file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def _atomic(path: Path, write: Callable[[IO], None], mode: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600; results should read like any other file
        with os.fdopen(fd, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    return _atomic(path, lambda fh: fh.write(text), "w")


def write_json(path: Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_csv(path: Path, frame) -> Path:
    return _atomic(path, lambda fh: frame.to_csv(fh, index=False), "w")


def write_bytes(path: Path, data: bytes) -> Path:
    return _atomic(path, lambda fh: fh.write(data), "wb")


def write_torch(path: Path, obj: Any) -> Path:
    import torch

    return _atomic(path, lambda fh: torch.save(obj, fh), "wb")


def save_figure(path: Path, fig) -> Path:
    import matplotlib.pyplot as plt

    out = _atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=110, bbox_inches="tight"), "wb")
    plt.close(fig)
    return out


def _json_default(obj: Any):
    # numpy scalars and paths show up in results; write them as plain JSON values.
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
