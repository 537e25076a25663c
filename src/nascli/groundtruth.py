"""Tabular-benchmark ground truth (NAS-Bench-201 style CSVs keyed by arch string)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pandas as pd

from nascli.arch import Arch
from nascli.errors import UserError
from nascli.spaces.base import SearchSpace

KEY_COLUMN = "arch_str"


class BenchmarkTable:
    """Rows of a benchmark CSV, looked up by the space's benchmark key (NB201 arch string)."""

    def __init__(self, path: str | Path, metric: str, fitness: str | None = None):
        self.path = Path(path).expanduser()
        self.frame = _read(str(self.path.resolve()) if self.path.exists() else str(self.path))
        self.columns = [c for c in self.frame.columns
                        if c != KEY_COLUMN and c.lower() != "index" and pd.api.types.is_numeric_dtype(self.frame[c])]
        for key, column in (("metric", metric), ("fitness", fitness)):
            if column is not None and column not in self.columns:
                raise UserError(f"benchmark.{key} '{column}' is not a column of {self.path}; "
                                f"choose one of: {', '.join(self.columns)}")
        self.metric = metric
        # What a search sees (NB201's protocol: the validation column), kept apart from what it is judged by.
        valid = [c for c in self.columns if "valid" in c.lower()]
        self.fitness_column = fitness if fitness is not None else (valid[0] if len(valid) == 1 else None)

    @property
    def fitness_epochs(self) -> int | None:
        """Epochs of training behind one fitness value, when the column says (NB201: `..._12ep`)."""
        match = re.search(r"_(\d+)ep$", self.fitness_column or "")
        return int(match.group(1)) if match else None

    def require_fitness(self) -> str:
        if self.fitness_column is None:
            raise UserError(f"{self.path} has no single validation column to search on; set benchmark.fitness="
                            f"COLUMN (one of: {', '.join(self.columns)}); benchmark.fitness={self.metric} searches "
                            "on the reported metric itself")
        return self.fitness_column

    def fitness(self, space: SearchSpace, arch: Arch) -> float | None:
        row = self.truth(space, arch)
        return None if row is None else row[self.require_fitness()]

    def __len__(self) -> int:
        return len(self.frame)

    def truth(self, space: SearchSpace, arch: Arch) -> dict[str, float] | None:
        key = space.benchmark_key(arch)
        if key not in self.frame.index:
            return None
        row = self.frame.loc[key]
        return {c: float(row[c]) for c in self.columns}

    def value(self, space: SearchSpace, arch: Arch) -> float | None:
        row = self.truth(space, arch)
        return None if row is None else row[self.metric]


@lru_cache(maxsize=4)
def _read(path: str) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"benchmark table {p} does not exist; set benchmark.table=PATH to a CSV "
                        "such as ../shared/benchmarks/nb201/nb201_cifar10.csv")
    try:
        frame = pd.read_csv(p)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise UserError(f"cannot read benchmark table {p}: {e}; pass a CSV file") from None
    if KEY_COLUMN not in frame.columns:
        raise UserError(f"benchmark table {p} has no '{KEY_COLUMN}' column; it needs NB201 arch strings")
    frame[KEY_COLUMN] = frame[KEY_COLUMN].astype(str).str.strip()
    return frame.drop_duplicates(KEY_COLUMN).set_index(KEY_COLUMN, drop=False)


def open_table(cfg_benchmark, space: SearchSpace) -> BenchmarkTable | None:
    """The configured table, checked before any work starts; None when none is set."""
    if not cfg_benchmark.table:
        return None
    if not space.has_benchmark:
        raise UserError(f"space '{space.name}' has no benchmark table; benchmark.table works with space=nb201")
    return BenchmarkTable(cfg_benchmark.table, cfg_benchmark.metric, cfg_benchmark.get("fitness"))
