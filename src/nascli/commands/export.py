"""`nas export ARCH --format F`: one folder holding the model in format F and export.json, which says what the
model takes (input shape, normalisation, class names), where it came from and how the export was checked."""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import torch

from nascli import __version__
from nascli.atomic import write_json
from nascli.errors import UserError
from nascli.exporting.formats import format_of, missing_modules
from nascli.exporting.source import export_source
from nascli.exporting.standalone import space_exporter
from nascli.measure import count_params

EXPORT_FORMAT = "nascli.export/1"
EXPORT_JSON = "export.json"


@dataclass
class ExportOutcome:
    folder: Path
    record: dict  # export.json


def run_export(ref: str, fmt: str, *, out: Path | None, init: bool, force: bool, overrides: list[str],
               run_root: Path, argv: list[str], config_dir: Path | None = None) -> ExportOutcome:
    """Every check runs before anything is written; the folder appears whole (built beside it, then renamed)."""
    spec = format_of(fmt)
    missing = missing_modules(spec)
    if missing:
        raise UserError(f"--format {fmt} needs {', '.join(missing)}, which is not installed; "
                        f"pip install 'nascli[{spec.extra}]'")
    if out is not None and Path(out).exists() and not force:
        raise UserError(f"{out} exists; pass --force to replace it, or another --out")
    source = export_source(ref, overrides, weights=spec.needs_weights, init=init, run_root=run_root,
                           config_dir=config_dir)
    space_exporter(source.arch.space)  # a space without a writer is named before anything is written
    arch = source.arch
    if out is None:
        stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        out = Path(run_root) / "export" / f"{stamp}_{arch.arch_id}_{fmt}_{secrets.token_hex(2)}"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial-{secrets.token_hex(3)}"
    staging.mkdir()
    try:
        written = spec.write(source, staging)
        record = _record(source, fmt, written, argv)
        write_json(staging / EXPORT_JSON, record)
        if out.exists():  # --force
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportOutcome(out, record)


def _record(source, fmt: str, written: dict, argv: list[str]) -> dict:
    i = source.input
    return {
        "format": EXPORT_FORMAT, "export_format": fmt, "files": written["files"],
        "arch_id": source.arch.arch_id, "space": source.arch.space, "genotype": source.arch.genotype,
        "input": {"shape": [i["channels"], i["height"], i["width"]], "layout": "NCHW", "dtype": "float32",
                  "batch": "any", "resize_to": i.get("resize")},
        "normalisation": {"mean": i["mean"], "std": i["std"], "formula": "(pixels / 255 - mean) / std, per channel"},
        "num_classes": i["num_classes"], "classes": i["classes"], "dataset": i.get("dataset"),
        "network": source.net,
        "params": count_params(source.model) if source.model is not None else None,
        "source": {k: source.origin[k] for k in ("ref", "run", "checkpoint", "weights", "seed")},
        "accuracy": source.origin["accuracy"],
        "check": written.get("check"),
        **({"model_py_lines": written["model_py_lines"]} if "model_py_lines" in written else {}),
        "torch": torch.__version__, "nascli": __version__, "argv": list(argv),
    }
