"""Sets of architectures for `nas rank` and batch retraining.

Sources, mixed freely: a run directory (search or rank: its archs.csv order and archs/*.json),
an arch.json, a CSV with an `arch_str` (NB201) or `genotype` (JSON) column, and seeded samples
of the space. Duplicates (same arch_id) are kept once, first occurrence wins.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from nascli.arch import Arch
from nascli.arch_io import arch_from_json, read_arch_file
from nascli.errors import UserError
from nascli.rundir import RunDir, read_results_csv
from nascli.spaces.base import SearchSpace


@dataclass
class ArchSet:
    archs: list[Arch] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)  # where each came from (path or "sample")

    seen: set[str] = field(default_factory=set)

    def add(self, arch: Arch, origin: str) -> None:
        if arch.arch_id not in self.seen:
            self.seen.add(arch.arch_id)
            self.archs.append(arch)
            self.origins.append(origin)

    def __len__(self) -> int:
        return len(self.archs)


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and (path / RunDir.MANIFEST).is_file()


def run_archs(run_dir: Path, table: Path | None = None) -> list[Arch]:
    """A search or rank run's architectures, best first when it has a ranking."""
    table = table or next((run_dir / n for n in (RunDir.RANKED, RunDir.ARCHS) if (run_dir / n).is_file()), None)
    if table is None:
        raise UserError(f"{run_dir} has no ranked.csv or archs.csv; pass a search or rank run directory")
    ids = list(dict.fromkeys(read_results_csv(table)["arch_id"].astype(str)))
    archs = []
    for arch_id in ids:
        path = run_dir / RunDir.ARCH_DIR / f"{arch_id}.json"
        if not path.is_file():
            raise UserError(f"{path} is missing; the run directory {run_dir} is incomplete")
        archs.append(read_arch_file(path))
    return archs


def csv_archs(path: Path, space: SearchSpace) -> list[Arch]:
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {path} as CSV ({e}); pass a CSV with an arch_str or genotype column") from None
    if "arch_str" in frame.columns:
        if space.name != "nb201":
            raise UserError(f"{path} lists NB201 arch strings; add space=nb201")
        return [space.make({"arch_str": str(s)}) for s in frame["arch_str"]]
    if "genotype" in frame.columns:
        out = []
        for i, text in enumerate(frame["genotype"]):
            try:
                out.append(arch_from_json({"space": space.name, "genotype": json.loads(text)}, f"{path} row {i + 1}"))
            except json.JSONDecodeError:
                raise UserError(f"{path} row {i + 1}: genotype is not JSON; write one genotype object per row") from None
        return out
    if "arch_id" in frame.columns and (path.parent / RunDir.ARCH_DIR).is_dir():  # a run's archs.csv / ranked.csv
        return run_archs(path.parent, table=path)
    raise UserError(f"{path} has neither an 'arch_str' nor a 'genotype' column; add one")


def sample_archs(space: SearchSpace, n: int, seed: int) -> list[Arch]:
    """n distinct architectures drawn uniformly (with a cap on retries for tiny spaces)."""
    rng = random.Random(seed)
    out: dict[str, Arch] = {}
    for _ in range(50 * n):
        if len(out) == n:
            break
        arch = space.sample(rng)
        out.setdefault(arch.arch_id, arch)
    return list(out.values())


def load_arch_set(refs: list[str], space: SearchSpace, sample: int | None, seed: int, every: bool = False) -> ArchSet:
    found = ArchSet()
    for ref in refs:
        path = Path(ref).expanduser()
        if is_run_dir(path):
            archs = run_archs(path)
        elif path.is_file() and path.suffix.lower() == ".csv":
            archs = csv_archs(path, space)
        elif path.is_file():
            archs = [read_arch_file(path)]
        else:
            raise UserError(f"{ref} does not exist; pass a run directory, an arch.json or a CSV of architectures")
        for arch in archs:
            if arch.space != space.name:
                raise UserError(f"{ref} holds {arch.space} architectures but the space is {space.name}; "
                                f"add space={arch.space}")
            found.add(arch, str(path))
    if sample:
        if sample < 1:
            raise UserError("--sample must be at least 1")
        for arch in sample_archs(space, int(sample), seed):
            found.add(arch, "sample")
    if every:
        for arch in space.enumerate():
            found.add(arch, "all")
    if not len(found):
        raise UserError("no architectures to rank; pass a run directory, arch.json or CSV, or --sample N")
    return found
