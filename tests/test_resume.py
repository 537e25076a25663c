"""Kill a run at any checkpoint, resume it, and get the bytes of a run that was never interrupted.

Each kind of long run (every registered strategy, and retrain) is killed with SIGKILL three times, at
checkpoints drawn from a seeded list (NASCLI_KILL_AFTER_CHECKPOINTS makes the process kill itself right
after its Nth checkpoint, so the points are reproducible), resumed each time, and compared with an
uninterrupted run of the same command.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nascli.precision import cpu_has_bf16
from nascli.resume import KILL_ENV
from nascli.rundir import RunDir
from nascli.strategies.base import STRATEGIES, load_strategy_plugins
from tests.conftest import share_latency_tables

load_strategy_plugins()

# One process: the kill hook counts the checkpoints of the process that writes them (pools: see the README).
COMMON = ["device.threads=1", "checkpoint.every_s=0", "executor.workers=1"]
# Tiny networks: what is tested is the checkpoint round trip, and each run here is started five times.
CELLS = ["space.search.channels=4", "space.search.layers=3", "space.retrain.channels=4", "space.retrain.layers=3"]
SEARCH = {
    "random": ["strategy=random", "dataset=digits", "budget=smoke", *CELLS],
    "snas": ["strategy=snas", "dataset=digits", "budget=smoke", *CELLS],
    "smash": ["strategy=smash", "dataset=digits", "budget=smoke", "space.search.channels=8", "space.retrain.channels=8"],
    "pnas": ["strategy=pnas", "dataset=digits", "budget=smoke", *CELLS],
    "evolution": ["strategy=evolution", "dataset=digits", "budget=smoke", *CELLS],
    # SMASH on its benchmarkable space too: another network, another generator, the same resume contract
    "smash_nb201": ["strategy=smash", "space=nb201", "dataset=digits", "budget=smoke", "space.search.channels=4"],
}
RETRAIN = ["darts:DARTS_V2", "dataset=digits", "budget=smoke", "space.retrain.channels=4", "space.retrain.layers=3"]
# Digits at 16 px: under the default device.amp=auto a CPU with native bf16 trains these in bf16 (the rule in
# nascli.precision: SNAS on nb201, a DARTS retrain; SNAS on darts keeps float32 at any size).
BF16 = {"snas_bf16": ["search", "strategy=snas", "space=nb201", "dataset=digits", "budget=smoke", "dataset.resize=16",
                      "space.search.channels=4"],
        "retrain_bf16": ["retrain", *RETRAIN, "dataset.resize=16"]}
# Timings differ between any two runs; everything else in metrics.jsonl must not.
TIMING_KEYS = {"time", "seconds", "train_seconds", "evaluation_seconds", "checkpoint_seconds", "checkpoints"}


def nas(*args, kill_after: int | None = None, **popen) -> subprocess.CompletedProcess:
    env = {**os.environ, "NASCLI_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    env.pop(KILL_ENV, None)
    if kill_after:
        env[KILL_ENV] = str(kill_after)
    return subprocess.run([sys.executable, "-m", "nascli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600, **popen)


def command(kind: str) -> list[str]:
    if kind in BF16:
        return [*BF16[kind], *COMMON]
    return ["search", *SEARCH[kind], *COMMON] if kind in SEARCH else ["retrain", *RETRAIN, *COMMON]


def subcommand(kind: str) -> str:
    return command(kind)[0]


def only_run(root: Path, kind: str) -> Path:
    (run,) = list((root / kind).iterdir())
    return run


def records(run: Path) -> list[dict]:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in lines if r.get("event") != "resumed"]


def result_bytes(run: Path, kind: str) -> dict[str, bytes]:
    names = [RunDir.ARCHS, RunDir.RANKED, RunDir.ARCH] if subcommand(kind) == "search" else [RunDir.RESULT, RunDir.ARCH]
    # arch.json names its own run directory; everything else in it must match.
    return {n: (run / n).read_bytes().replace(str(run).encode(), b"<run>") for n in names}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run per kind, made on first use."""
    made = {}

    def get(kind: str) -> Path:
        if kind not in made:
            root = tmp_path_factory.mktemp(f"reference_{kind}")
            res = nas(*command(kind), "--run-root", root)
            assert res.returncode == 0, res.stderr
            made[kind] = only_run(root, subcommand(kind))
        return made[kind]

    return get


@pytest.fixture(scope="module")
def _killed_once(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("killed_random")
    res = nas(*command("random"), "--run-root", root, kill_after=2)
    assert res.returncode == -signal.SIGKILL, res.stderr
    return only_run(root, "search")


@pytest.fixture
def killed_random(_killed_once, reference, tmp_path) -> Path:
    """A random search SIGKILLed right after its 2nd checkpoint, copied into this test's run root (a run
    directory may move: nothing in it names its own path)."""
    import shutil

    share_latency_tables(reference("random").parent.parent, tmp_path)  # resumed to the end, it must match it
    return Path(shutil.copytree(_killed_once, tmp_path / "search" / _killed_once.name))


@pytest.mark.parametrize("kind", [*sorted(STRATEGIES), "smash_nb201", "retrain", *BF16])
def test_killed_three_times_then_resumed_equals_uninterrupted(kind, reference, tmp_path):
    ref = reference(kind)
    total = json.loads((ref / RunDir.MANIFEST).read_text())
    total = total["summary"]["checkpoints"]
    assert total >= 4, f"{kind} saves only {total} checkpoints at this budget: too few kill points"
    points = sorted(random.Random(f"kill-{kind}").sample(range(1, total), 3))
    run_kind = subcommand(kind)
    share_latency_tables(ref.parent.parent, tmp_path)
    res = nas(*command(kind), "--run-root", tmp_path, kill_after=points[0])
    assert res.returncode == -signal.SIGKILL, res.stderr
    run = only_run(tmp_path, run_kind)
    killed = RunDir.open(run)
    assert killed.manifest["status"] == "running" and killed.status == "interrupted"
    for previous, point in zip(points, points[1:], strict=False):
        res = nas(run_kind, "--resume", run, "--run-root", tmp_path, kill_after=point - previous)
        assert res.returncode == -signal.SIGKILL, (point, res.stderr)
    res = nas(run_kind, "--resume", "latest", "--run-root", tmp_path)
    assert res.returncode == 0, res.stderr
    assert result_bytes(run, kind) == result_bytes(ref, kind)
    assert records(run) == records(ref)  # nothing logged twice, nothing lost
    assert sum(r.get("event") == "resumed" for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())) == 3
    manifest = json.loads((run / RunDir.MANIFEST).read_text())
    assert manifest["status"] == "done" and len(manifest["resumed_at"]) == 3
    assert manifest["precision"] == json.loads((ref / RunDir.MANIFEST).read_text())["precision"]
    assert manifest["precision"]["amp"] == ("bf16" if kind in BF16 and cpu_has_bf16() else "off")
    assert not (run / "checkpoints" / RunDir.RESUME_CKPT).exists()  # a finished run keeps no resume state


def test_killed_run_is_named_interrupted_by_readers(cli, killed_random, tmp_path):
    run = killed_random
    for args in (["rank", run], ["rank", "latest", "proxy=params"], ["correlate", run], ["retrain", "latest"],
                 ["retrain", run, "--top", "1"], ["retrain", run]):
        res = cli(*args, "--run-root", tmp_path)
        assert res.exit_code == 2, (args, res.stderr)
        assert f"interrupted (resumable: nas search --resume {run})" in res.stderr, (args, res.stderr)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_marks_interrupted_and_resumes(signum, reference, tmp_path):
    # The default-size HyperNet: its 12 epochs must outlast the 2 s wait below.
    args = ["search", "strategy=smash", "dataset=digits", "budget=smoke", "device.threads=1", "checkpoint.every_s=3600",
            "budget.hypernet_epochs=12", "--run-root", tmp_path]
    env = {**os.environ, "NASCLI_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "nascli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(tmp_path.glob("search/*/metrics.jsonl")):
        time.sleep(0.2)
    time.sleep(2.0)  # inside the HyperNet's training loop, far from the hourly checkpoint
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    run = only_run(tmp_path, "search")
    assert f"resume with: nas search --resume {run}" in err
    manifest = json.loads((run / RunDir.MANIFEST).read_text())
    assert manifest["status"] == "interrupted" and manifest["resume"] == f"nas search --resume {run}"
    assert (run / "checkpoints" / RunDir.RESUME_CKPT).is_file()  # the stop wrote a last checkpoint
    if signum == signal.SIGTERM:  # both write the same checkpoint; finishing one of them is proof enough
        res = nas("search", "--resume", run, "--run-root", tmp_path)
        assert res.returncode == 0, res.stderr
        assert json.loads((run / RunDir.MANIFEST).read_text())["status"] == "done"


def test_second_process_on_a_run_is_refused(killed_random, tmp_path):
    run = killed_random
    holder = RunDir.open(run)
    holder.lock()  # this test process now writes the run
    try:
        res = nas("search", "--resume", run, "--run-root", tmp_path)
        assert res.returncode == 2 and f"run {run} is in use by pid {os.getpid()}" in res.stderr, res.stderr
    finally:
        holder._lock_fh.close()


def test_corrupt_checkpoint_falls_back_then_refuses(reference, killed_random, tmp_path):
    run = killed_random
    ckpt = run / "checkpoints" / RunDir.RESUME_CKPT
    ckpt.write_bytes(ckpt.read_bytes()[:-100])  # a torn write
    res = nas("search", "--resume", run, "--run-root", tmp_path, kill_after=1)
    assert res.returncode == -signal.SIGKILL
    assert "checksum mismatch" in res.stderr and "resumed from the previous checkpoint" in res.stderr
    for path in (ckpt, ckpt.with_name(ckpt.name + ".prev")):
        path.write_bytes(b"garbage")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != RunDir.LOCK}
    res = nas("search", "--resume", run, "--run-root", tmp_path)
    assert res.returncode == 2 and "the run cannot be resumed" in res.stderr and "Traceback" not in res.stderr
    assert res.stderr.count("\n") == 1
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != RunDir.LOCK} == before
    # Without the damaged files the run starts over from its first step, and still gives the same bytes.
    for path in (ckpt, ckpt.with_name(ckpt.name + ".prev")):
        path.unlink()
    assert nas("search", "--resume", run, "--run-root", tmp_path).returncode == 0
    assert result_bytes(run, "random") == result_bytes(reference("random"), "random")


def test_resume_overrides_extend_budgets_only(cli, killed_random, tmp_path):
    run = killed_random
    for bad, words in (("dataset.subset=100", "'dataset.subset' cannot change on resume"),
                       ("strategy.num_archs=2", "would shorten the run"),
                       ("seed=3", "'seed' cannot change on resume")):
        res = cli("search", "--resume", run, bad, "--run-root", tmp_path)
        assert res.exit_code == 2 and words in res.stderr, res.stderr
    res = nas("search", "--resume", run, "strategy.num_archs=5", "--run-root", tmp_path)
    assert res.returncode == 0, res.stderr
    assert len(RunDir.open(run).read_frame(RunDir.ARCHS)) == 5
    manifest = json.loads((run / RunDir.MANIFEST).read_text())
    assert manifest["resume_extended"] == [{"strategy.num_archs": {"from": 4, "to": 5}}]


def test_finished_run_has_nothing_to_resume(cli, reference):
    ref = reference("random")
    res = cli("search", "--resume", ref, "--run-root", ref.parent.parent)
    assert res.exit_code == 2 and "already finished; nothing to resume" in res.stderr


def test_batch_retrain_resume_skips_finished_and_resumes_the_killed(reference, tmp_path):
    import shutil

    src = tmp_path / "search" / reference("random").name
    shutil.copytree(reference("random"), src)
    batch = ["retrain", src, "--top", "2", "budget=smoke", "space.retrain.channels=4", "space.retrain.layers=3",
             *COMMON, "--run-root", tmp_path]
    res = nas(*batch)
    assert res.returncode == 0, res.stderr
    done = sorted((tmp_path / "retrain").iterdir())
    expected = {json.loads((d / RunDir.RESULT).read_text())["arch_id"]: (d / RunDir.RESULT).read_bytes() for d in done}
    per_run = json.loads((done[0] / RunDir.MANIFEST).read_text())["summary"]["checkpoints"]
    shutil.rmtree(tmp_path / "retrain")
    res = nas(*batch, kill_after=per_run + 2)  # the first retrain finishes, the second dies early
    assert res.returncode == -signal.SIGKILL
    first, second = sorted((tmp_path / "retrain").iterdir())
    first_result = (first / RunDir.RESULT).read_bytes()
    assert RunDir.open(second).status == "interrupted"
    res = nas(*batch, "--resume")
    assert res.returncode == 0, res.stderr
    assert sorted((tmp_path / "retrain").iterdir()) == [first, second]  # no third run: nothing retrained twice
    assert (first / RunDir.RESULT).read_bytes() == first_result
    got = {json.loads((d / RunDir.RESULT).read_text())["arch_id"]: (d / RunDir.RESULT).read_bytes()
           for d in (first, second)}
    assert got == expected
