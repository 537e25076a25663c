"""Docs that cannot rot: every shell block in README.md and docs/ carries a marker, and every block marked runnable
runs here, at budget=smoke with tiny networks, and exits as the page says.

A marker is an HTML comment on the line before the block:

    <!-- runnable -->                                  run it; exit 0
    <!-- runnable: exit 2 -->                          it shows a bad input
    <!-- runnable: needs-shared; replace A => B -->    skip without ../shared; run with A replaced by B
    <!-- runnable: before CMD -->                      run CMD first (a run the block reads)
    <!-- runnable: skip (why) -->                      cannot run here (a GPU, a cluster, hours): counted

`nas search` and `nas retrain` lines get `budget=smoke`, tiny cells and one worker appended, and run against a
run root of their own; `../shared` is the shared data when it is present.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
MARKER = re.compile(r"^<!-- runnable(?::\s*(?P<spec>.*?))?\s*-->$")
SMOKE = "budget=smoke device.threads=1 executor.workers=1"
PRELUDE = f"""set -eo pipefail
nas() {{ case "$1" in search|retrain) command nas "$@" {SMOKE};; *) command nas "$@";; esac; }}
"""


@dataclass
class Block:
    page: str
    line: int
    code: str
    marker: str | None
    skip: str | None = None
    exit_code: int = 0
    needs_shared: bool = False
    replace: list[tuple[str, str]] = field(default_factory=list)
    before: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def parse(spec: str | None, block: Block) -> Block:
    if (spec or "").startswith("skip"):  # the rest is the reason, whatever punctuation it has
        block.skip = spec[4:].strip(" ()") or "no reason given"
        return block
    for part in filter(None, (p.strip() for p in (spec or "").split("; "))):
        if part.startswith("exit "):
            block.exit_code = int(part.split()[1])
        elif part == "needs-shared":
            block.needs_shared = True
        elif part.startswith("replace "):
            old, new = part[len("replace "):].split(" => ", 1)
            block.replace.append((old, new))
        elif part.startswith("before "):
            block.before.append(part[len("before "):])
        else:
            raise ValueError(f"{block.id}: unknown marker part {part!r}")
    return block


def blocks() -> list[Block]:
    found = []
    for path in PAGES:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip() != "```bash":
                continue
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip().startswith("```"))
            prev = lines[i - 1].strip() if i else ""
            match = MARKER.match(prev)
            block = Block(str(path.relative_to(REPO)), i + 1, "\n".join(x.strip() for x in lines[i + 1:end]),
                          prev if match else None)
            found.append(parse(match.group("spec"), block) if match else block)
    return found


BLOCKS = blocks()
RUNNABLE = [b for b in BLOCKS if b.marker and not b.skip]


def test_every_shell_block_is_marked_and_the_skipped_ones_say_why():
    unmarked = [b.id for b in BLOCKS if b.marker is None]
    assert not unmarked, f"shell blocks without a runnable marker: {unmarked}"
    skipped = [b for b in BLOCKS if b.skip]
    assert all(len(b.skip) > 10 for b in skipped)
    # The count is part of the contract: a page that grows a block must mark it one way or the other.
    assert len(RUNNABLE) >= 8 and len(BLOCKS) == len(RUNNABLE) + len(skipped)
    print(f"{len(BLOCKS)} shell blocks: {len(RUNNABLE)} run here, {len(skipped)} cannot (reasons in the markers)")


def test_reference_tables_match_the_registries():
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_reference.py"), "--check"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_runnable_block(block: Block, tmp_path):
    if block.needs_shared and SHARED is None:
        pytest.skip("needs ../shared (datasets, benchmarks)")
    code = block.code
    for old, new in block.replace:
        assert old in code, f"{block.id}: the marker replaces {old!r}, which the block does not contain"
        code = code.replace(old, new)
    work = tmp_path / "work"
    work.mkdir()
    for name in ("examples", "conf"):
        (work / name).symlink_to(REPO / name)
    if SHARED is not None:
        (tmp_path / "shared").symlink_to(SHARED)  # ../shared, as beside a checkout
    env = {**os.environ, "NASCLI_RUN_ROOT": str(tmp_path / "runs"), "NASCLI_PROGRESS": "0", "OMP_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    script = PRELUDE + "\n".join(block.before) + "\n" + code + "\n"
    res = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == block.exit_code, f"{block.id} exited {res.returncode}:\n{res.stderr[-3000:]}"
