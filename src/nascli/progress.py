"""Rich progress bars with an ETA, on stderr so stdout stays clean for tables and pipes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

stderr = Console(stderr=True)

_active: list[Progress] = []


def _enabled() -> bool:
    return os.environ.get("NASCLI_PROGRESS", "1") != "0"


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Callable[..., None]]:
    """Yield `advance(n=1, **fields)`; nested bars share one live display. `advance` raises Interrupted
    when SIGINT / SIGTERM asked a resumable run to stop."""
    from nascli.resume import check_stop

    if not _enabled():
        yield lambda n=1, **fields: check_stop() if n else None
        return
    owner = not _active
    progress = _active[0] if _active else Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=stderr,
        transient=False,
    )
    if owner:
        _active.append(progress)
        progress.start()
    task = progress.add_task(description, total=total, status="")

    def advance(n: int = 1, **fields) -> None:
        # Every long loop advances a bar: the one place a stop signal is noticed where no checkpoint is due.
        # (Not on n=0: a loop that resumes or closes an epoch reports first and reaches its checkpoint next.)
        if n:
            check_stop()
        if fields:
            progress.update(task, advance=n, status=" ".join(f"{k}={_fmt(v)}" for k, v in fields.items()))
        else:
            progress.advance(task, n)

    try:
        yield advance
    finally:
        if owner:
            progress.stop()
            _active.clear()
        else:
            progress.remove_task(task)


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
