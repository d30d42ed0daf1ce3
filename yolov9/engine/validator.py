"""Validation: `validate(model, data, ...)` (what `yolov9 val` and `YOLOv9.val()` call) and the `Validator` the
trainer reuses every epoch. Both assemble the task's post-processing and evaluators around the EvalRunner, then
report (table, COCO JSON, plots)."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Optional, Union

import torch

from yolov9.callbacks import Callbacks
from yolov9.data import build_val_loader, load_data_config
from yolov9.errors import ConfigError
from yolov9.eval.report import print_speed, print_table, print_val_loss, save_plots, write_json
from yolov9.eval.runner import EvalRunner
from yolov9.models.detection_model import DetectionModel
from yolov9.runtime import Backend, load_model, require_trainable
from yolov9.tasks import Task, task_of


class Validator:
    """Evaluates models on one val loader: `validator(model)` -> metrics (and prints, writes JSON and plots).

    conf / iou / max_det: NMS settings (the official val defaults); branch: a head branch other than the main one;
    criterion: a loss whose per-branch validation loss is reported; data: the loaded dataset config (for COCO
    category and image ids in the JSON).
    """

    def __init__(self, loader, task: Task, names: list[str], data: Optional[dict] = None, conf: float = 0.001,
                 iou: float = 0.7, max_det: int = 300, half: bool = False, branch: Optional[int] = None,
                 criterion: Any = None, save_json: bool = False, plots: bool = True,
                 save_dir: Optional[Union[str, Path]] = None, device: Union[str, torch.device] = "cpu",
                 single_cls: bool = False, verbose: bool = True, callbacks: Optional[Callbacks] = None):
        self.task, self.names, self.verbose, self.plots = task, list(names), verbose, plots
        self.save_json = save_json
        self.save_dir = Path(save_dir) if save_dir else None
        data = data or {}
        category_ids = None if single_cls else data.get("category_ids")
        evaluators = task.evaluators(self.names, max_det, save_json, category_ids, data.get("image_ids"))

        def postprocess(output):
            return task.postprocess(output, conf, iou, max_det, agnostic=single_cls, multi_label=True)

        self.runner = EvalRunner(loader, postprocess, evaluators, criterion, task.loss_arguments, branch, device,
                                 half, callbacks)

    def __call__(self, model: Union[DetectionModel, Backend]) -> dict[str, Any]:
        metrics = self.runner(model)
        metrics["fitness"] = self.task.fitness(metrics)
        if self.verbose:
            print_table(metrics, self.task.table_groups)
            print_speed(metrics["speed_ms"])
            if "val_loss" in metrics:
                print_val_loss(metrics["val_loss"], self.runner.criterion.item_names)
        if self.save_json:
            metrics["json"] = write_json(metrics["json_rows"], (self.save_dir or Path(".")) / "predictions.json",
                                         self.verbose)
        if self.plots and self.save_dir is not None:
            for _, prefix in self.task.table_groups:
                save_plots(metrics, self.names, self.save_dir, prefix)
        return metrics


def validate(model: Union[DetectionModel, Backend, str, Path], data: Union[str, Path, dict], imgsz: int = 640,
             batch: int = 32, conf: float = 0.001, iou: float = 0.7, max_det: int = 300, half: bool = False,
             branch: Optional[int] = None, save_json: bool = False, plots: bool = True,
             save_dir: Optional[Union[str, Path]] = None, device: str = "cpu", workers: int = 2, split: str = "val",
             verbose: bool = True, single_cls: bool = False, criterion: Any = None, loss: bool = False,
             callbacks: Optional[Callbacks] = None) -> dict[str, Any]:
    """Validate a model, checkpoint, config or exported file on a dataset split; prints the table, returns metrics.

    `loss`: also the validation loss of every head branch (the task's loss with the model's hyperparameters; a
    trainable model only), like `criterion` given explicitly.
    """
    model = load_model(model, device=device)
    task = task_of(model)
    if loss and criterion is None:
        criterion = task.loss(require_trainable(model, "report a validation loss"), getattr(model, "hyp", None))
    if isinstance(model, Backend):
        where = model.source
        if criterion is not None or branch is not None:
            raise ConfigError(f"{where}: an exported model has only its main branch and no raw maps; "
                              "validation loss and branch= need the .pt model")
        if model.has_nms:
            raise ConfigError(f"{where}: exported with in-graph NMS (its own thresholds); validate the plain "
                              "export (without --nms) or the .pt model")
        if model.fixed_shape is not None:  # square letterbox to the exported size instead of rect batches
            if model.fixed_shape[0] != model.fixed_shape[1]:
                raise ConfigError(f"{where}: validation needs a square or --dynamic export, "
                                  f"not {model.fixed_shape[0]}x{model.fixed_shape[1]}")
            imgsz = model.fixed_shape[0]
        nc, stride = len(model.names), max(model.stride, 32)
    else:
        if criterion is not None or branch is not None:  # the runner evaluates this model itself (raw maps)
            model = copy.deepcopy(model).to(device)
            model = model.half() if half else model
        nc, stride = model.nc, max(int(model.stride.max()), 32)
    data_cfg = load_data_config(data)
    if nc != data_cfg["nc"] and not single_cls:
        raise ConfigError(f"{data_cfg['yaml_file'] or 'data config'}: {data_cfg['nc']} classes, but the model "
                          f"predicts {nc}; use a model trained on this dataset (or single_cls=True)")
    rect = getattr(model, "fixed_shape", None) is None
    loader = build_val_loader(data_cfg, split=split, imgsz=imgsz, batch=batch, workers=workers, stride=stride,
                              single_cls=single_cls, rect=rect, **task.loader_options())
    names = ["item"] if single_cls else data_cfg["names"]
    validator = Validator(loader, task, names, data_cfg, conf=conf, iou=iou, max_det=max_det, half=half,
                          branch=branch, criterion=criterion, save_json=save_json, plots=plots, save_dir=save_dir,
                          device=device, single_cls=single_cls, verbose=verbose, callbacks=callbacks)
    return validator(model)
