"""What the experiment-tracking loggers (MLflow, Weights & Biases) share: whether the user configured them, the
run's configuration, the files they keep at the end, and the one error for a missing package. Their packages are
optional (`pip install 'yolov9[loggers]'`) and imported only by a logger that is on (see `trackers`).
"""
from __future__ import annotations

import importlib
import os
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

from yolov9.errors import YOLOv9Error

EXTRA = "pip install 'yolov9[loggers]'"
MLFLOW_SETTINGS = ("MLFLOW_TRACKING_URI",)        # any of these set: the user configured MLflow
WANDB_SETTINGS = ("WANDB_API_KEY", "WANDB_MODE")  # any of these set: the user configured W&B


class LoggerPackageError(YOLOv9Error):
    """A tracker was asked for (`--mlflow`, `--wandb`) but its package is not installed."""


def configured(*variables: str) -> bool:
    """Whether any of the environment `variables` is set (to anything but the empty string)."""
    return any(os.environ.get(name) for name in variables)


@contextmanager
def environment_defaults(**variables: str) -> Iterator[None]:
    """`variables` in the environment while the block runs (a package reads them when it starts); those the user
    set stay as they are, the others are removed afterwards."""
    added = {name: value for name, value in variables.items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def import_package(module: str, pip: str, option: str) -> ModuleType:
    """`module`, imported now (only a logger that is on calls this), or the error naming the pip command."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise LoggerPackageError(f"--{option} (training option {option}={True}) needs {pip}, which is not installed "
                                 f"({e}): pip install {pip}, or {EXTRA}") from e


def run_config(trainer: Any) -> dict[str, Any]:
    """The training options and the resolved hyperparameters as one flat mapping (their names do not overlap)."""
    return {**trainer.opt.to_dict(), **trainer.hyp.to_dict()}


def final_files(trainer: Any) -> dict[str, Path]:
    """The files a tracker keeps at the end of a run, by their path in its artifacts (those that exist):
    weights/best.pt, weights/last.pt, results.csv, results.png."""
    files = {f"weights/{name}": trainer.weights_dir / name for name in ("best.pt", "last.pt")}
    files.update({name: trainer.save_dir / name for name in ("results.csv", "results.png")})
    return {name: path for name, path in files.items() if path.is_file()}
