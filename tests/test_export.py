"""`nas export` and the Python API: every registered space through every format, loaded back without nascli."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from nascli.datashape import DataShape
from nascli.exporting.formats import EXPORT_FORMATS, ONNX_TOLERANCE, PT_TOLERANCE
from nascli.spaces.base import SPACES, get_space, load_space_plugins

from .conftest import REPO, TINY, run_of, tree_digest

load_space_plugins()
# One worker runs this module, so its exports and runs (module fixtures) are made once, not once per worker.
pytestmark = pytest.mark.xdist_group("export")

# One published architecture per space; a space without one here is exported with a sampled architecture.
PRESETS = {"darts": "darts:DARTS_V2", "pnas": "pnas:PNASNet", "nb201": "nb201:best_cifar10"}
# Small networks: the formats do not care about size, the suite's minutes do.
SIZES = {"darts": ["space.retrain.channels=4", "space.retrain.layers=3"],
         "pnas": ["space.retrain.channels=4", "space.retrain.layers=3"],
         "nb201": ["space.retrain.channels=4", "space.retrain.cells_per_stage=1"],
         "membank": ["space.retrain.channels=8"]}

# Run with `python -I`, and with nascli made unimportable besides: what a user without nascli can do.
WITHOUT_NASCLI = r'''
import importlib.util, json, sys
import torch

class NoNascli:
    def find_spec(self, name, path=None, target=None):
        if name == "nascli" or name.startswith("nascli."):
            raise ImportError("nascli is not available here")

sys.meta_path.insert(0, NoNascli())
for space, job in json.loads(sys.argv[1]).items():
    x = torch.load(job["input"])
    program = torch.export.load(job["pt2"]).module()
    spec = importlib.util.spec_from_file_location("model_" + space, job["model_py"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.build()
    net.load_state_dict(torch.load(job["state"]))
    net.eval()
    with torch.no_grad():
        torch.save({"pt2": program(x), "model_py": net(x)}, job["output"])
assert not any(m == "nascli" or m.startswith("nascli.") for m in sys.modules)
'''


def _arch_ref(space_name: str, folder: Path) -> str:
    if space_name in PRESETS:
        return PRESETS[space_name]
    arch = get_space(space_name).sample(random.Random(0))
    path = folder / f"{space_name}.json"
    path.write_text(json.dumps(arch.to_json()))
    return str(path)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every registered space exported to every format with --init (seed 0: the same weights in each format),
    then the pt2 file and model.py run in a Python where nascli cannot be imported."""
    from typer.testing import CliRunner

    from nascli.cli import app

    root = tmp_path_factory.mktemp("exported")
    runner = CliRunner()
    folders: dict[str, dict[str, Path]] = {}
    jobs = {}
    for space_name in sorted(SPACES):
        ref = _arch_ref(space_name, root)
        folders[space_name] = {}
        for fmt in sorted(EXPORT_FORMATS):
            out = root / space_name / fmt
            res = runner.invoke(app, ["export", ref, "--format", fmt, "--init", "--out", str(out), "dataset=digits",
                                      *SIZES.get(space_name, [])])
            assert res.exit_code == 0, (space_name, fmt, res.output)
            folders[space_name][fmt] = out
        meta = json.loads((folders[space_name]["pt2"] / "export.json").read_text())
        x = torch.randn(5, *meta["input"]["shape"], generator=torch.Generator().manual_seed(3))
        torch.save(x, root / f"{space_name}_x.pt")
        jobs[space_name] = {"input": str(root / f"{space_name}_x.pt"), "pt2": str(folders[space_name]["pt2"] / "model.pt2"),
                            "model_py": str(folders[space_name]["state_dict"] / "model.py"),
                            "state": str(folders[space_name]["state_dict"] / "model_state.pt"),
                            "output": str(root / f"{space_name}_out.pt")}
    done = subprocess.run([sys.executable, "-I", "-c", WITHOUT_NASCLI, json.dumps(jobs)], capture_output=True,
                          text=True, cwd=root, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return folders, jobs


def _nascli_logits(folder: Path, state_path: Path, x: torch.Tensor) -> torch.Tensor:
    """nascli's own network for the exported architecture, with the exported weights, in this process."""
    from nascli.arch import Arch

    meta = json.loads((folder / "export.json").read_text())
    arch = Arch.from_json({"space": meta["space"], "genotype": meta["genotype"]})
    space = get_space(arch.space)
    c, h, w = meta["input"]["shape"]
    model = space.build(arch, DataShape(c, h, w, meta["num_classes"]), OmegaConf.create(meta["network"])).eval()
    model.load_state_dict(torch.load(state_path, weights_only=True))
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("space_name", sorted(SPACES))
def test_every_space_exports_to_files_that_run_without_nascli(space_name, exported):
    folders, jobs = exported
    job = jobs[space_name]
    x = torch.load(job["input"])
    reference = _nascli_logits(folders[space_name]["state_dict"], Path(job["state"]), x)
    outside = torch.load(job["output"])
    assert (outside["pt2"] - reference).abs().max() <= PT_TOLERANCE
    assert (outside["model_py"] - reference).abs().max() <= PT_TOLERANCE
    assert "nascli" not in (folders[space_name]["state_dict"] / "model.py").read_text().split('"""', 2)[2]

    import onnxruntime

    session = onnxruntime.InferenceSession(str(folders[space_name]["onnx"] / "model.onnx"))
    onnx_logits = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
    assert (onnx_logits - reference).abs().max() <= ONNX_TOLERANCE

    for fmt, folder in folders[space_name].items():
        meta = json.loads((folder / "export.json").read_text())
        assert meta["export_format"] == fmt and all((folder / f).is_file() for f in meta["files"])
        # the preprocessing travels with the model: digits' 8x8 grey images, their statistics and classes
        assert meta["input"]["shape"] == [1, 8, 8] and meta["classes"] == [str(i) for i in range(10)]
        assert len(meta["normalisation"]["mean"]) == 1 and meta["normalisation"]["std"][0] > 0
        assert meta["source"]["weights"] == (None if fmt == "genotype" else "initialised")
        assert meta["torch"] == torch.__version__
        if fmt != "genotype":
            assert meta["check"]["max_abs_diff"] <= meta["check"]["tolerance"]


def test_the_genotype_files_speak_each_spaces_notation(exported):
    folders, _ = exported
    darts = (folders["darts"]["genotype"] / "genotype.py").read_text()
    assert "Genotype(\n    normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)," in darts
    namespace: dict = {}
    exec(darts, namespace)  # DARTS-family code reads it as is
    assert len(namespace["GENOTYPE"].reduce) == 8 and namespace["GENOTYPE"].reduce_concat == [2, 3, 4, 5]
    pnas = {}
    exec((folders["pnas"]["genotype"] / "genotype.py").read_text(), pnas)
    assert pnas["GENOTYPE"].reduce == pnas["GENOTYPE"].normal  # PNAS runs its one cell with stride 2
    nb201 = (folders["nb201"]["genotype"] / "arch_str.txt").read_text().strip()
    assert nb201 == "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    for space_name in folders:
        doc = json.loads((folders[space_name]["genotype"] / "arch.json").read_text())
        assert doc["space"] == space_name and doc["format"] == "nascli.arch/1"


def test_a_darts_model_py_is_short_and_readable(exported):
    folders, _ = exported
    meta = json.loads((folders["darts"]["state_dict"] / "export.json").read_text())
    text = (folders["darts"]["state_dict"] / "model.py").read_text()
    assert meta["model_py_lines"] == len(text.splitlines()) < 150
    assert "'sep_conv_5x5'" not in text  # only the ops DARTS_V2 uses are written out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A search and a retrain of its best architecture on digits, through the API and the CLI."""
    from typer.testing import CliRunner

    import nascli
    from nascli.cli import app

    root = tmp_path_factory.mktemp("trained")
    api_run = nascli.search(strategy="random", dataset="digits", budget="smoke", run_root=root / "api",
                            overrides=["executor.workers=1"])
    res = CliRunner().invoke(app, ["search", "strategy=random", "dataset=digits", "budget=smoke",
                                   "executor.workers=1", "--run-root", str(root / "cli")])
    assert res.exit_code == 0, res.output
    retrained = nascli.retrain(api_run.best, run_root=root / "api", overrides=TINY)
    return {"api": api_run, "cli": run_of(res), "retrain": retrained, "root": root}


def test_the_api_search_writes_what_the_cli_writes(trained):
    import nascli

    api_run = trained["api"]
    cli_run = nascli.load_run(trained["cli"])
    assert sorted(p.name for p in api_run.path.iterdir()) == sorted(p.name for p in cli_run.path.iterdir())
    keep = ["arch_id", "score", "status", "params", "flops"]
    pd.testing.assert_frame_equal(api_run.archs[keep], cli_run.archs[keep])
    assert api_run.best == cli_run.best and isinstance(api_run.best, nascli.Arch)
    assert api_run.ranked.iloc[0]["arch_id"] == api_run.best.arch_id
    assert api_run.config.strategy.name == "random" and api_run.kind == "search"
    retrain = trained["retrain"]
    assert retrain.result["arch_id"] == api_run.best.arch_id and 0 <= retrain.result["test_acc"] <= 100
    assert set(retrain.metrics["event"]) >= {"epoch"}
    model = nascli.build_model(api_run.best, num_classes=10, in_channels=1, height=8, width=8)
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_a_retrain_exports_its_trained_weights_and_preprocessing(trained, tmp_path):
    import nascli

    retrain = trained["retrain"]
    folder = nascli.export(retrain.path, "pt2", out=tmp_path / "pt2")
    meta = json.loads((folder / "export.json").read_text())
    assert meta["source"]["weights"] == "trained" and meta["source"]["checkpoint"].endswith("best.pt")
    assert meta["accuracy"]["test_acc"] == retrain.result["test_acc_at_best_val"]
    assert meta["arch_id"] == retrain.result["arch_id"] and meta["dataset"] == "digits"
    blob = torch.load(retrain.path / "checkpoints" / "best.pt", weights_only=True)
    assert meta["normalisation"]["mean"] == blob["input"]["mean"]
    program = torch.export.load(folder / "model.pt2").module()
    x = torch.randn(4, 1, 8, 8)
    expected = _nascli_logits(folder, _state_of(blob), x)
    assert (program(x) - expected).abs().max() <= PT_TOLERANCE
    # Every tensor sits on the loaded module's root (FlatState): no nested getattr walk per call, which cost
    # 8-20% of a batch-1 forward (bench/export_latency.json).
    names = [name for name, _ in [*program.named_parameters(), *program.named_buffers()]]
    expected_names = {k.replace(".", "_") for k in blob["model"] if not k.startswith("auxiliary.")}
    assert set(names) == expected_names

    # The README's last step: a fresh Python classifies a digit image with export.json's preprocessing.
    from PIL import Image
    from sklearn.datasets import load_digits

    pixels = (load_digits().images[0] * 255 / 16).round().astype("uint8")
    Image.fromarray(pixels).save(tmp_path / "digit.png")
    done = subprocess.run([sys.executable, "-I", str(REPO / "examples" / "classify.py"), str(folder),
                           str(tmp_path / "digit.png")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    image = (torch.from_numpy(pixels).float() / 255 - meta["normalisation"]["mean"][0]) / meta["normalisation"]["std"][0]
    predicted = int(_nascli_logits(folder, _state_of(blob), image.view(1, 1, 8, 8)).argmax())
    assert done.stdout.startswith(f"{tmp_path / 'digit.png'}: {meta['classes'][predicted]} (")


def _state_of(blob: dict) -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "state.pt"
    torch.save({k: v for k, v in blob["model"].items() if not k.startswith("auxiliary.")}, path)
    return path


def _one_line_refusal(res, fragment: str) -> None:
    assert res.exit_code == 2, res.output
    assert fragment in res.stderr and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.output


def test_bad_exports_get_one_line_and_write_nothing(trained, cli, tmp_path, monkeypatch):
    import nascli

    search_run = trained["api"].path
    before = tree_digest(search_run)
    res = cli("export", search_run, "--format", "pt2", "--run-root", tmp_path / "runs")
    _one_line_refusal(res, "--init")
    assert "nas retrain" in res.stderr
    res = cli("export", "nb201:best_cifar10", "--format", "tflite", "--init", "--run-root", tmp_path / "runs")
    _one_line_refusal(res, "unknown export format 'tflite'")
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    res = cli("export", "nb201:best_cifar10", "--format", "genotype", "--out", out, "--run-root", tmp_path / "runs")
    _one_line_refusal(res, "pass --force")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]

    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real_find_spec(name, *a))
    res = cli("export", "nb201:best_cifar10", "--format", "onnx", "--init", "--run-root", tmp_path / "runs")
    _one_line_refusal(res, "pip install 'nascli[onnx]'")
    monkeypatch.undo()
    assert not (tmp_path / "runs").exists() and tree_digest(search_run) == before

    with pytest.raises(nascli.UserError, match="pass --init"):
        nascli.export(search_run, "onnx", run_root=tmp_path / "runs")
    with pytest.raises(nascli.UserError, match="unknown darts preset"):
        nascli.build_model("darts:NOT_A_PRESET")

    res = cli("export", "nb201:best_cifar10", "--format", "genotype", "--out", out, "--force")
    assert res.exit_code == 0 and sorted(p.name for p in out.iterdir()) == ["arch.json", "arch_str.txt", "export.json"]


def test_a_script_without_a_main_guard_is_told_so_and_its_workers_write_nothing(tmp_path):
    """Spawned workers import the caller's script again: an unguarded top-level nascli call would start the
    command again in every worker. The workers stop at once, and the parent's pool names the missing guard."""
    script = tmp_path / "unguarded.py"
    script.write_text("import nascli\n\nnascli.search(strategy='random', dataset='digits', budget='smoke', "
                      "run_root='runs', **{'executor.workers': 2, 'device.threads': 1})\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("nascli.errors.UserError:") and 'if __name__ == "__main__":' in last, done.stderr[-2000:]
    assert len(list((tmp_path / "runs" / "search").iterdir())) == 1  # the parent's run only
