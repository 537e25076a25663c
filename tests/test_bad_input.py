"""Bad input: one line on stderr naming problem and fix, exit code 2, no traceback, no changes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from .conftest import TINY, tree_digest


def assert_user_error(res, fragment):
    assert res.exit_code == 2, (res.exit_code, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("nas: error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in res.stderr + res.stdout


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One real search run that the bad inputs below must leave untouched."""
    from typer.testing import CliRunner

    from nascli.cli import app

    root = tmp_path_factory.mktemp("existing")
    res = CliRunner().invoke(app, ["search", "strategy=random", *TINY, "--run-root", str(root)])
    assert res.exit_code == 0, res.stderr
    run = next((root / "search").iterdir())
    return root, run


def _arch_doc(run):
    return json.loads((run / "arch.json").read_text())


CASES = {
    "malformed json": (lambda d, run: d.write_text("{not json"), "is not valid JSON"),
    "unknown space": (lambda d, run: d.write_text(json.dumps({**_arch_doc(run), "space": "resnet"})), "unknown space 'resnet'"),
    "unknown op": (lambda d, run: d.write_text(json.dumps({**_arch_doc(run), "arch_id": None, "genotype": {
        **_arch_doc(run)["genotype"], "normal": [[["conv_9x9", 0]]] * 4}})), "unknown op 'conv_9x9'"),
    "wrong arch_id": (lambda d, run: d.write_text(json.dumps({**_arch_doc(run), "arch_id": "0" * 12})), "does not match"),
    "wrong format": (lambda d, run: d.write_text(json.dumps({**_arch_doc(run), "format": "other/2"})), "format"),
    "not an object": (lambda d, run: d.write_text("[1, 2]"), "JSON object"),
    "corrupt checkpoint": (lambda d, run: d.with_suffix(".pt").write_bytes(
        (run / "checkpoints" / "strategy.pt").read_bytes()[:100]), "cannot read checkpoint"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_architecture_files(case, cli, finished_run, tmp_path):
    root, run = finished_run
    before = tree_digest(root)
    write, fragment = CASES[case]
    target = tmp_path / "arch.json"
    write(target, run)
    ref = target.with_suffix(".pt") if case == "corrupt checkpoint" else target
    assert_user_error(cli("retrain", ref, "--run-root", root), fragment)
    assert tree_digest(root) == before


@pytest.mark.parametrize("args,fragment", [
    (["search", "strategy=nope"], "unknown strategy 'nope'"),
    (["search", "dataset=nope"], "unknown dataset 'nope'"),
    (["search", "space=nope"], "unknown space 'nope'"),
    (["search", "budget.epochz=1"], "unknown config key 'budget.epochz'"),
    (["search", "budget.epochs=lots"], "bad value for 'budget.epochs'"),
    (["search", "seed=[1"], "cannot parse override"),
    (["search", "strategy=random", "space=darts", "benchmark.table=/no/such.csv"], "benchmark"),
    (["retrain", "missing.json"], "does not exist"),
    (["retrain", "runs/search/no-such-run"], "does not exist"),
    (["retrain", "nope:DARTS_V2"], "unknown space 'nope'"),
    (["retrain", "darts:NOPE"], "unknown darts preset 'NOPE'"),
    (["retrain", "darts:DARTS_V2", "space=nb201"], "from space 'darts'"),
    (["retrain", "nb201:|bad|"], "bad NB201 edge"),
])
def test_bad_arguments(args, fragment, cli, finished_run):
    root, _ = finished_run
    before = tree_digest(root)
    assert_user_error(cli(*args, "--run-root", root), fragment)
    assert tree_digest(root) == before


def test_strategy_checkpoint_is_not_an_architecture(cli, finished_run):
    root, run = finished_run
    assert_user_error(cli("retrain", run / "checkpoints" / "strategy.pt", "--run-root", root),
                      "carries no architecture")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_gpu(cli, finished_run):
    root, _ = finished_run
    assert_user_error(cli("search", "device=cuda", *TINY, "--run-root", root), "no CUDA device")


def test_real_process_prints_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "nascli", "retrain", str(tmp_path / "none.json")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "does not exist" in out.stderr
