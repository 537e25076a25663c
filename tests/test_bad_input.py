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
    # numbers out of range are refused by the schema, naming the key, before any work
    (["search", "budget.epochs=-1"], "budget.epochs=-1 is out of range: it must be at least 1"),
    (["retrain", "darts:DARTS_V2", "budget.epochs=0"], "budget.epochs=0 is out of range"),
    (["search", "budget.batch_size=0"], "budget.batch_size=0 is out of range"),
    (["search", "dataset.subset=0"], "dataset.subset=0 is out of range"),
    (["search", "dataset.val_fraction=1.5"], "dataset.val_fraction=1.5 is out of range: it must be a fraction in (0, 1)"),
    (["search", "train.drop_path=2"], "train.drop_path=2.0 is out of range: it must be between 0 and 1"),
    (["search", "checkpoint.every_s=-5"], "checkpoint.every_s=-5.0 is out of range"),
    (["search", "latency.method=guess"], "latency.method=guess is not a way to get latency"),
    (["retrain", "darts:DARTS_V2", "device.amp=fp16"], "device.amp=fp16 is not supported"),
    (["search", "device.amp=fast"], "device.amp=fast is not a precision"),
    (["retrain", "darts:DARTS_V2", "device.channels_last=nhwc"], "device.channels_last=nhwc is not a layout"),
    (["rank", "--sample", "2", "proxy=synflow", "objective=mnas"], "objective.target_ms=MS"),
    (["rank", "--sample", "2", "proxy=latency", "latency.method=none"], "latency.method=none gives no latency"),
    (["rank", "--sample", "2", "proxy=vote", "vote=synflow,params"], "odd number of proxies"),
])
def test_bad_arguments(args, fragment, cli, finished_run):
    root, _ = finished_run
    before = tree_digest(root)
    assert_user_error(cli(*args, "--run-root", root), fragment)
    assert tree_digest(root) == before


def test_rank_with_a_strategy_that_has_no_score_of_its_own(cli, finished_run):
    root, run = finished_run  # random search: its score() would train every architecture again
    before = tree_digest(root)
    res = cli("rank", run, "--sample", "3", "--run-root", root)
    assert_user_error(res, "the random strategy has no score of its own")
    assert "proxy=" in res.stderr and tree_digest(root) == before


def test_results_csv_without_arch_id(cli, finished_run, tmp_path):
    import shutil

    import pandas as pd

    root, run = finished_run
    copy = tmp_path / "edited"
    shutil.copytree(run, copy)
    pd.read_csv(copy / "ranked.csv").drop(columns=["arch_id"]).to_csv(copy / "ranked.csv", index=False)
    for extra in ([], ["proxy=params"]):
        assert_user_error(cli("rank", copy, *extra, "--run-root", root), "ranked.csv has no arch_id column")


def test_unwritable_run_root(cli):
    assert_user_error(cli("search", *TINY, "--run-root", "/proc/nascli-runs"),
                      "cannot create run directories under /proc/nascli-runs")


def test_config_dir_with_yaml_syntax_error(cli, tmp_path):
    (tmp_path / "strategy").mkdir()
    (tmp_path / "strategy" / "broken.yaml").write_text("name: random\nnum_archs: [1,\n")
    assert_user_error(cli("search", "strategy=broken", "--config-dir", tmp_path, "--run-root", tmp_path / "runs"),
                      "YAML syntax error in")
    assert not (tmp_path / "runs").exists()


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


# -- messages that must name the real problem (not a neighbouring one) ------------------------------
def test_rank_and_correlate_name_the_real_problem(cli, finished_run, tmp_path):
    root, run = finished_run
    before = tree_digest(root)
    assert_user_error(cli("rank", tmp_path / "nonexistent" / "run", "--run-root", root), "does not exist")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    assert_user_error(cli("rank", corrupt, "--run-root", root), "it is corrupt or not a nascli checkpoint")
    assert_user_error(cli("rank", corrupt, "proxy=params", "--run-root", root), "it is corrupt or not a nascli checkpoint")
    strategy_ckpt = run / "checkpoints" / "strategy.pt"
    assert_user_error(cli("rank", strategy_ckpt, "--run-root", root), "is a checkpoint, not a set of architectures")
    malformed = tmp_path / "malformed.json"
    malformed.write_text("{not json")
    assert_user_error(cli("correlate", malformed, "proxy=a", "truth=b", "--run-root", root),
                      "is not a CSV file or a run directory")
    assert_user_error(cli("search", "=snas", "--run-root", root), "has no key before '='; write KEY=VALUE, e.g. strategy=snas")
    assert tree_digest(root) == before


def test_offline_download_says_it_failed_and_how_to_point_at_a_copy(cli, finished_run, tmp_path, monkeypatch):
    import torchvision

    def offline(root, train=True, download=False, **kw):
        try:
            raise OSError("[Errno -3] Temporary failure in name resolution")
        except OSError as e:
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\n") from e

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    root, _ = finished_run
    res = cli("retrain", "darts:DARTS_V2", "dataset=fashion_mnist", f"dataset.root={tmp_path / 'data'}",
              "--run-root", root)
    assert_user_error(res, "could not download fashion_mnist (no network?")
    assert "name resolution" in res.stderr and "dataset.root=DIR" in res.stderr and str(tmp_path / "data") in res.stderr
    assert "dataset.download=true" not in res.stderr


def test_latest_is_the_newest_run_even_within_one_second(tmp_path):
    from nascli.rundir import RunDir

    base = tmp_path / "search"
    for name, started in (("2026-01-01_00-00-00_x_ffff", "2026-01-01T00:00:00.100000+00:00"),
                          ("2026-01-01_00-00-00_x_0000", "2026-01-01T00:00:00.900000+00:00")):
        (base / name).mkdir(parents=True)
        (base / name / "manifest.json").write_text(json.dumps({"kind": "search", "status": "done",
                                                               "started_at": started}))
    assert RunDir.latest(tmp_path, "search").path.name == "2026-01-01_00-00-00_x_0000"


def test_retrain_from_a_retrain_checkpoint_keeps_its_config(cli, finished_run, tmp_path):
    root, run = finished_run
    res = cli("retrain", run / "arch.json", *TINY, "budget.epochs=1", "seed=3", "--run-root", tmp_path)
    assert res.exit_code == 0, res.output
    first = next((tmp_path / "retrain").iterdir())
    res = cli("retrain", first / "checkpoints" / "last.pt", "--run-root", tmp_path)
    assert res.exit_code == 0, res.output
    assert "of retrain run" in res.stderr and "search run" not in res.stderr
    second = max((tmp_path / "retrain").iterdir(), key=lambda p: json.loads((p / "manifest.json").read_text())["started_at"])
    import yaml

    cfg = yaml.safe_load((second / "config.yaml").read_text())
    assert cfg["budget"]["epochs"] == 1 and cfg["seed"] == 3 and cfg["space"]["retrain"]["channels"] == 4
