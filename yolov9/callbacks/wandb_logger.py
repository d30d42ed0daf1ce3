"""Weights & Biases: one W&B run per training run, with the options and hyperparameters as its config, every
results.csv column logged at step = epoch, and a `model` artifact `run-<id>` with weights/best.pt, weights/last.pt,
results.csv and results.png.

Offline unless the user configured W&B (`WANDB_API_KEY` or `WANDB_MODE` set): then it runs as W&B is told to.
Offline it never asks for a login and touches no network: no system-metrics sampler or machine metadata probe,
no analytics, no crash reports. The run directory is `<run folder>/wandb/offline-run-<time>-<id>` (or under
`WANDB_DIR` when set); upload it later with `wandb sync <that directory>`. Project: `WANDB_PROJECT`, else the
project folder's name; run name: the run folder's name.
"""
from __future__ import annotations

import os
from typing import Any

from yolov9.callbacks.experiment import (WANDB_SETTINGS, configured, environment_defaults, final_files,
                                         import_package, run_config)

OFFLINE_SETTINGS = dict(mode="offline", disable_git=True, save_code=False, disable_job_creation=True,
                        x_disable_stats=True, x_disable_meta=True, x_disable_machine_info=True)


class WandbLogger:
    """Logs a training run to W&B: offline into the run folder unless W&B is configured."""

    def __init__(self) -> None:
        self.wandb = import_package("wandb", "wandb", "wandb")
        self.offline = not configured(*WANDB_SETTINGS)
        self.run: Any = None

    def on_train_start(self, trainer: Any) -> None:
        wandb = self.wandb
        quiet = {} if trainer.opt.verbose else {"silent": True, "console": "off"}
        settings = wandb.Settings(**quiet, **(OFFLINE_SETTINGS if self.offline else {}))
        no_reports = {"WANDB_ERROR_REPORTING": "false"} if self.offline else {}  # read when its service starts
        with environment_defaults(**no_reports):
            if self.offline:
                wandb.setup(settings=settings)  # the process-wide settings too: its analytics follow their mode
            self.run = wandb.init(project=os.environ.get("WANDB_PROJECT") or trainer.save_dir.parent.name,
                                  name=trainer.save_dir.name, dir=os.environ.get("WANDB_DIR") or str(trainer.save_dir),
                                  config=run_config(trainer), settings=settings)

    def on_fit_epoch_end(self, trainer: Any) -> None:
        self.run.log(dict(trainer.history.last), step=trainer.epoch)

    def on_train_end(self, trainer: Any) -> None:
        best = {"best_epoch": trainer.best.epoch, "best_fitness": trainer.best.fitness}
        artifact = self.wandb.Artifact(f"run-{self.run.id}", type="model", metadata=best)
        for name, path in final_files(trainer).items():  # immutable: read from the run folder, no staged copy
            artifact.add_file(str(path.resolve()), name=name, policy="immutable")
        self.run.log_artifact(artifact)
        self.run.finish()
