"""nascli: a command-line experiment runner for neural architecture search, and its Python API (nascli.api)."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

_API = ("search", "retrain", "rank", "correlate", "report", "export", "load_run", "build_model", "Run")
__all__ = ["Arch", "Run", "UserError", "__version__", "build_model", "correlate", "export", "load_run", "rank",
           "report", "retrain", "search"]

from nascli.arch import Arch  # noqa: E402
from nascli.errors import UserError  # noqa: E402

if TYPE_CHECKING:
    from nascli.api import Run, build_model, correlate, export, load_run, rank, report, retrain, search


def __getattr__(name: str):
    # The API imports torch and pandas: `import nascli` stays light until a function is used.
    if name in _API:
        from nascli import api

        return getattr(api, name)
    raise AttributeError(f"module 'nascli' has no attribute {name!r}")
