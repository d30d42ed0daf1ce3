"""Which experiment trackers a training run turns on. A tracker is on when its training option is set
(`mlflow=True`, `wandb=True`: `--mlflow`, `--wandb`), or when its package is installed and the user configured it
in the environment (`MLFLOW_TRACKING_URI`; `WANDB_API_KEY` or `WANDB_MODE`). Nothing is imported for one that is off.
"""
from __future__ import annotations

import importlib.util
from typing import Any

from yolov9.callbacks.experiment import MLFLOW_SETTINGS, WANDB_SETTINGS, configured


def experiment_loggers(opt: Any) -> list:
    """The tracker loggers this run's options and environment turn on (MLflow, then W&B)."""
    loggers = []
    if opt.mlflow or (configured(*MLFLOW_SETTINGS) and importlib.util.find_spec("mlflow")):
        from yolov9.callbacks.mlflow_logger import MLflowLogger

        loggers.append(MLflowLogger())
    if opt.wandb or (configured(*WANDB_SETTINGS) and importlib.util.find_spec("wandb")):
        from yolov9.callbacks.wandb_logger import WandbLogger

        loggers.append(WandbLogger())
    return loggers
