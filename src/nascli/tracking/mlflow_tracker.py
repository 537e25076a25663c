"""`tracking=mlflow`: one MLflow run per nascli run, at `tracking.uri` (default a local ./mlruns file store; a
server's http(s):// URI or a database URI works the same way).

Params: the whole config, dotted. Metrics: every record's numbers (`<event>.<key>` at its step) and the final
ones. Artifacts: the run directory itself, at the end. The MLflow run ends FINISHED, FAILED or KILLED as the
nascli run did.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from nascli.tracking.base import Tracker, final_metrics, flat_params, register_tracker

STATUS = {"done": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}


@dataclass
class MlflowConfig:
    name: str = "mlflow"
    uri: str = "./mlruns"  # tracking URI: a folder (file store), sqlite:///..., or http(s)://server
    experiment: str = "nascli"


@register_tracker("mlflow")
class MlflowTracker(Tracker):
    Config = MlflowConfig
    engine = ("mlflow", "mlflow")

    def start(self, run, cfg) -> None:
        import mlflow

        self.mlflow = mlflow
        uri = str(self.cfg.uri)
        if "://" not in uri or uri.startswith("file:"):
            # MLflow 3 keeps the file store behind an opt-in; a local folder is what a laptop user wants.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = uri if uri.startswith("file:") else os.path.abspath(uri)
        self.mlflow.set_tracking_uri(uri)
        self.mlflow.set_experiment(str(self.cfg.experiment))
        self.active = self.mlflow.start_run(run_name=run.path.name)
        params = {k: v[:500] for k, v in flat_params(cfg).items()}
        items = list(params.items())
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per call
            self.mlflow.log_params(dict(items[i:i + 100]))
        self.mlflow.set_tags({"nascli.kind": run.manifest.get("kind"), "nascli.run": str(run.path)})

    def scalars(self, event, values, step) -> None:
        self.mlflow.log_metrics({f"{event}.{k}": v for k, v in values.items()}, step=step)

    def close(self, run) -> None:
        metrics = final_metrics(run)
        if metrics:
            self.mlflow.log_metrics({k.replace("/", "."): v for k, v in metrics.items()})
        self.mlflow.log_artifacts(str(run.path), artifact_path="run")
        self.mlflow.end_run(status=STATUS.get(run.manifest.get("status"), "FINISHED"))
