"""MLflow: one MLflow run per training run, with the options and hyperparameters as parameters, every
results.csv column as a metric at step = epoch, and the weights and results files as artifacts.

Where it goes: the tracking server or store of `MLFLOW_TRACKING_URI` when it is set; otherwise a local SQLite store
beside the run folders, `<project>/mlflow.db`, with the artifacts in `<project>/mlartifacts` (MLflow's own
backend; its file store is deprecated). Nothing then touches the network. View it with
`mlflow ui --backend-store-uri sqlite:///<project>/mlflow.db` (the UI is in the full `mlflow` package).
Experiment: `MLFLOW_EXPERIMENT_NAME`, else the project folder's name; run name: the run folder's name.
"""
from __future__ import annotations

import os
import posixpath
import re
import time
from pathlib import Path
from typing import Any, Optional

from yolov9.callbacks.experiment import (MLFLOW_SETTINGS, configured, environment_defaults, final_files,
                                         import_package, run_config)

PARAMS_PER_BATCH = 100  # MLflow's limit of parameters in one log_batch call
_NOT_IN_A_NAME = re.compile(r"[^\w\-./ ]")  # MLflow names: alphanumerics, _ - . / and spaces (':' not on Windows)


def metric_name(column: str) -> str:
    """The MLflow name of a results.csv column: every character MLflow refuses becomes '_'
    ("metrics/mAP50-95" stays as it is; "metrics/mAP50(M)" -> "metrics/mAP50_M_")."""
    return _NOT_IN_A_NAME.sub("_", column)


def local_store(project: Path) -> tuple[str, str]:
    """(tracking URI, artifact location) of the local store of the runs under `project`."""
    return f"sqlite:///{(project / 'mlflow.db').resolve().as_posix()}", (project / "mlartifacts").resolve().as_uri()


class MLflowLogger:
    """Logs a training run to MLflow through its client API (no global active run is left behind)."""

    def __init__(self) -> None:
        self.local = not configured(*MLFLOW_SETTINGS)
        offline = {"MLFLOW_DISABLE_TELEMETRY": "true"} if self.local else {}  # read when mlflow is first imported
        with environment_defaults(**offline):
            import_package("mlflow", "mlflow-skinny", "mlflow")
        if self.local:
            import_package("alembic", "sqlalchemy alembic", "mlflow")  # the local SQLite store needs both
        self.client: Any = None
        self.run_id: Optional[str] = None

    def on_train_start(self, trainer: Any) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        project = trainer.save_dir.parent
        uri, artifacts = local_store(project) if self.local else (None, None)
        self.client = MlflowClient(tracking_uri=uri)
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or project.name
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = (experiment.experiment_id if experiment else
                         self.client.create_experiment(name, artifact_location=artifacts))
        run = self.client.create_run(experiment_id, run_name=trainer.save_dir.name,
                                     tags={"yolov9.save_dir": str(trainer.save_dir.resolve())})
        self.run_id = run.info.run_id
        params = [Param(key, str(value)) for key, value in run_config(trainer).items()]
        for start in range(0, len(params), PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=params[start:start + PARAMS_PER_BATCH])
        if trainer.opt.verbose:
            print(f"MLflow: run {self.run_id} in experiment {name!r} at {self.client.tracking_uri}")

    def on_fit_epoch_end(self, trainer: Any) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(metric_name(key), float(value), now, trainer.epoch)
                   for key, value in trainer.history.last.items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def on_train_end(self, trainer: Any) -> None:
        for name, path in final_files(trainer).items():
            self.client.log_artifact(self.run_id, str(path), artifact_path=posixpath.dirname(name) or None)
        self.client.set_terminated(self.run_id)
