"""Read architectures from what users pass: arch.json files, presets, run dirs, checkpoints.

    nas retrain runs/search/<run>/arch.json     an arch.json (format nascli.arch/1)
    nas retrain darts:DARTS_V2                  a published preset (space:NAME)
    nas retrain "nb201:|nor_conv_3x3~0|+|...|"  an NB201 arch string
    nas retrain runs/search/<run>               a search run (its best arch.json)
    nas retrain latest                          the newest finished search run's arch.json
    nas retrain runs/retrain/<run>/checkpoints/best.pt   a checkpoint (carries its arch)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nascli.arch import ARCH_FORMAT, Arch
from nascli.errors import UserError
from nascli.rundir import CHECKPOINT_SUFFIXES, RunDir, load_checkpoint
from nascli.spaces.base import SPACES, get_space, load_space_plugins


def arch_from_json(doc: Any, where: str) -> Arch:
    """Validate an arch.json document (already parsed) and return the Arch it describes."""
    if not isinstance(doc, dict):
        raise UserError(f"{where} must hold a JSON object with 'space' and 'genotype'")
    fmt = doc.get("format", ARCH_FORMAT)
    if fmt != ARCH_FORMAT:
        raise UserError(f"{where} has format '{fmt}'; nascli reads '{ARCH_FORMAT}' architecture files")
    if "space" not in doc or "genotype" not in doc:
        raise UserError(f"{where} lacks 'space' or 'genotype'; an arch.json needs both")
    load_space_plugins()
    if doc["space"] not in SPACES:
        raise UserError(f"{where} is for unknown space '{doc['space']}'; known spaces: {', '.join(sorted(SPACES))}")
    try:
        arch = get_space(doc["space"]).make(doc["genotype"])
    except UserError as e:
        raise UserError(f"{where}: {e}") from None
    claimed = doc.get("arch_id")
    if claimed is not None and claimed != arch.arch_id:
        raise UserError(f"{where}: arch_id {claimed} does not match its genotype (expected {arch.arch_id}); "
                        "fix or delete the arch_id field")
    return arch


def read_arch_file(path: Path) -> Arch:
    try:
        doc = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); fix the file "
                        "or pass a preset such as darts:DARTS_V2") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a text JSON file; pass an arch.json") from None
    return arch_from_json(doc, str(path))


def resolve_ref_path(ref: str, run_root: Path) -> str:
    """`latest` means the newest finished search run's arch.json (unless a file is named so)."""
    if ref == "latest" and not Path(ref).exists():
        return str(RunDir.latest(run_root, "search").path / RunDir.ARCH)
    return ref


def resolve_arch(ref: str) -> Arch:
    """Turn a command-line architecture reference into an Arch (see module docstring)."""
    path = Path(ref).expanduser()
    if path.is_dir():
        if (path / RunDir.MANIFEST).is_file() and not (path / RunDir.ARCH).is_file():
            RunDir.open(path).require_finished()  # killed before it wrote arch.json: say it can be resumed
        if (path / RunDir.ARCH).is_file():
            return read_arch_file(path / RunDir.ARCH)
        raise UserError(f"{path} holds no arch.json; pass a search or retrain run directory or an arch.json")
    if path.is_file():
        if path.suffix in CHECKPOINT_SUFFIXES:
            blob = load_checkpoint(path)
            if "arch" not in blob:
                raise UserError(f"checkpoint {path} ({blob.get('kind', 'unknown')}) carries no architecture; "
                                "pass a retrain checkpoint (best.pt, last.pt) or an arch.json")
            return arch_from_json(blob["arch"], f"{path} (arch)")
        return read_arch_file(path)
    space_name, sep, name = ref.partition(":")
    load_space_plugins()
    if sep and space_name in SPACES:
        return get_space(space_name).from_ref(name)
    if sep and not any(ch in space_name for ch in "/\\.") and space_name:
        raise UserError(f"unknown space '{space_name}' in '{ref}'; known spaces: {', '.join(sorted(SPACES))}")
    raise UserError(f"{ref} does not exist; pass an arch.json, a run directory, a checkpoint, "
                    "or a preset such as darts:DARTS_V2")


def list_presets() -> dict[str, list[str]]:
    load_space_plugins()
    return {name: sorted(cls.presets) for name, cls in sorted(SPACES.items())}
