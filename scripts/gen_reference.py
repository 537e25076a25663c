"""Write docs/reference.md from the registries, so a plugin appears in the docs when it is registered.

    python scripts/gen_reference.py          # rewrite docs/reference.md
    python scripts/gen_reference.py --check  # exit 1 when docs/reference.md is not what the registries say (CI)
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "docs" / "reference.md"


def first_line(obj) -> str:
    """The object's own docstring (not an inherited one), else its module's: the first paragraph."""
    own = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    doc = inspect.cleandoc(own or "") or inspect.getdoc(sys.modules.get(getattr(obj, "__module__", ""), None)) or ""
    return " ".join(doc.split("\n\n")[0].split())


def _about(obj) -> str:
    about = getattr(obj, "about", None)  # registry entries that are records (export formats) say it themselves
    return " ".join(about.split()) if isinstance(about, str) and about else first_line(obj)


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return out + [""]


def render() -> str:
    from nascli.data import (
        DATASETS,
        sources,  # noqa: F401  (registers the datasets)
    )
    from nascli.executors.base import EXECUTORS, load_executor_plugins
    from nascli.exporting.formats import EXPORT_FORMATS
    from nascli.proxies.base import load_proxies
    from nascli.spaces.base import SPACES, load_space_plugins
    from nascli.strategies.base import STRATEGIES, load_strategy_plugins
    from nascli.tracking.base import TRACKERS, load_tracker_plugins

    load_strategy_plugins(), load_space_plugins(), load_executor_plugins(), load_tracker_plugins()
    proxies = load_proxies()
    lines = ["# Reference tables", "",
             "Generated from the registries by `python scripts/gen_reference.py` (CI checks that this page is "
             "current): every registered plugin is listed, with the first line of its documentation.", ""]
    sections = [("Strategies (`strategy=`)", STRATEGIES), ("Search spaces (`space=`)", SPACES),
                ("Executors (`executor=`)", EXECUTORS), ("Experiment trackers (`tracking=`)", TRACKERS),
                ("Datasets (`dataset=`)", DATASETS), ("Export formats (`nas export --format`)", EXPORT_FORMATS)]
    for title, registry in sections:
        lines += [f"## {title}", ""]
        lines += table(["name", "what it is"], [[f"`{n}`", _about(registry[n])] for n in sorted(registry)])
    lines += ["## Proxies (`nas rank proxy=`)", ""]
    rows = []
    for name in sorted(proxies):
        p = proxies[name]
        direction = "higher is better" if p.direction > 0 else "lower is better"
        batch = "combines other columns" if p.combined else ("no data" if p.batch_size is None else str(p.batch_size))
        rows.append([f"`{name}`", " ".join((p.about or "").split()), direction, batch,
                     " ".join((getattr(p, "degenerate", "") or "").split()) or "–"])
    lines += table(["name", "what it measures", "direction", "batch size", "degenerate cell"], rows)
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    text = render()
    if parser.parse_args().check:
        if not OUT.is_file() or OUT.read_text() != text:
            print(f"{OUT} is out of date with the registries; run python scripts/gen_reference.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
