"""Plain-dict registries filled by decorators, and a lookup that explains misses."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TypeVar

from nascli.errors import UserError

T = TypeVar("T")


def registrar(table: dict[str, T]) -> Callable[[str], Callable[[T], T]]:
    """Return a decorator factory `@register("name")` that fills `table`."""

    def register(name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in table and table[name] is not obj:
                raise ValueError(f"{name!r} is registered twice")
            table[name] = obj
            return obj

        return add

    return register


def lookup(table: dict[str, T], name: str, kind: str, hint: str = "") -> T:
    """Fetch a registry entry or raise a UserError listing what exists."""
    try:
        return table[name]
    except KeyError:
        choices = ", ".join(sorted(table)) or "none registered"
        extra = f"; {hint}" if hint else ""
        raise UserError(f"unknown {kind} '{name}'; choose one of: {choices}{extra}") from None


_loaded_groups: set[str] = set()


def load_plugins(group: str, builtin_modules: tuple[str, ...]) -> None:
    """Import the built-in plugin modules, then every installed entry point of `group`.

    Built-ins are imported by name too so a source checkout run without installation
    (PYTHONPATH=src) still has them; entry points add third-party plugins.
    """
    if group in _loaded_groups:
        return
    _loaded_groups.add(group)
    for module in builtin_modules:
        importlib.import_module(module)
    for ep in entry_points(group=group):
        if ep.value in builtin_modules:
            continue
        ep.load()


def require(module: str, extra: str, name: str, what: str = "executor"):
    """Import an optional plugin's engine, or tell the user the one pip command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"{what}={name} needs {module}, which is not installed; "
                        f"pip install 'nascli[{extra}]'") from None
