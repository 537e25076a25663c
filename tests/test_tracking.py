"""Experiment trackers: every registered tracker mirrors a digits search and a retrain; TensorBoard's event files
and MLflow's store are read back with their own readers; a missing tracker package is one line naming pip."""

from __future__ import annotations

import json
import sys

import pytest

from nascli.rundir import RunDir
from nascli.tracking.base import TRACKERS, load_tracker_plugins
from tests.conftest import TINY

load_tracker_plugins()


def _settings(name: str, tmp_path) -> list[str]:
    return [f"tracking={name}", *([f"tracking.uri={tmp_path / 'mlruns'}"] if name == "mlflow" else [])]


@pytest.fixture
def searched(cli, tmp_path):
    def run(name: str) -> RunDir:
        root = tmp_path / "runs"
        res = cli("search", *TINY, *_settings(name, tmp_path), "--run-root", root)
        assert res.exit_code == 0, res.output
        return RunDir.latest(root, "search")

    return run


@pytest.mark.parametrize("name", sorted(TRACKERS))
def test_every_tracker_mirrors_a_search_and_a_retrain(name, cli, tmp_path, searched):
    run = searched(name)
    assert run.manifest["status"] == "done"
    res = cli("retrain", run.path, *TINY, *_settings(name, tmp_path), "--run-root", tmp_path / "runs")
    assert res.exit_code == 0, res.output
    retrain = RunDir.latest(tmp_path / "runs", "retrain")
    assert retrain.manifest["status"] == "done"


def test_tensorboard_events_hold_scalars_images_and_hparams(searched):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = searched("tensorboard")
    events = EventAccumulator(str(run.path / "tb"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert "candidate/score" in tags["scalars"]  # one point per evaluated candidate
    assert len(events.Scalars("candidate/score")) == len(run.read_frame(RunDir.ARCHS))
    assert {"plots/scores", "cell/normal", "cell/reduce"} <= set(tags["images"])
    # add_hparams: the hyperparameters (HPARAMS tab) with the final metric beside them
    assert events.PluginTagToContent("hparams")
    best = run.manifest["summary"]["best_score"]
    assert events.Scalars("final/best_score")[0].value == pytest.approx(best)


def test_mlflow_run_has_params_metrics_and_the_run_directory(searched, tmp_path):
    import mlflow

    run = searched("mlflow")
    mlflow.set_tracking_uri(str(tmp_path / "mlruns"))
    (found,) = mlflow.search_runs(experiment_names=["nascli"]).to_dict("records")
    assert found["status"] == "FINISHED" and found["tags.mlflow.runName"] == run.path.name
    assert found["params.strategy.name"] == "random" and found["params.dataset.name"] == "digits"
    assert found["metrics.final.best_score"] == pytest.approx(run.manifest["summary"]["best_score"])
    history = mlflow.MlflowClient().get_metric_history(found["run_id"], "candidate.score")
    assert len(history) == len(run.read_frame(RunDir.ARCHS))
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(found["run_id"], "run")}
    assert {"run/archs.csv", "run/ranked.csv", "run/manifest.json"} <= artifacts
    assert json.loads((run.path / "manifest.json").read_text())["status"] == "done"


@pytest.mark.parametrize("name,module", [("tensorboard", "tensorboard"), ("mlflow", "mlflow")])
def test_missing_tracker_package_is_one_line_with_the_pip_command(name, module, cli, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if the extra was not installed
    res = cli("search", *TINY, f"tracking={name}", "--run-root", tmp_path)
    assert res.exit_code == 2
    assert res.stderr.strip() == (f"nas: error: tracking={name} needs {module}, which is not installed; "
                                  f"pip install 'nascli[{name}]'")
    assert not (tmp_path / "search").exists()  # named before any run directory was made
