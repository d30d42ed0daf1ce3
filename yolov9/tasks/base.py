"""The task seam: what one kind of model (detection, segmentation, ...) needs beyond the shared loops.

The trainer, the validator, the predictor and the exporter are written once; they ask the model's `Task` for the
loss, the loader options, the post-processing, the evaluators, the result type, the batch plot and the export
graph. A new task is a new module here with a `Task` subclass, registered in `yolov9.tasks.TASKS`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from torch import nn

from yolov9.cfg.hyp import Hyperparameters
from yolov9.eval.evaluator import Evaluator
from yolov9.ops.letterbox import Letterbox


@dataclass
class ExportGraph:
    """A traceable module and its outputs: output name -> dynamic axes (used with `--dynamic`)."""

    module: nn.Module
    dynamic_axes: dict[str, dict[int, str]]


class Task:
    """Interface of a task; see `yolov9.tasks.detect.DetectTask` for the reference implementation."""

    name = ""
    metric_keys: tuple[str, ...] = ()          # results.csv / logger columns `metrics/<key>`
    table_groups: tuple[tuple[str, str], ...] = (("", ""),)  # (title, metric prefix) column groups of the table

    def loss(self, model: nn.Module, hyp: Optional[Hyperparameters] = None, options: Any = None) -> Any:
        """The training objective: `loss(outputs, *loss_arguments(batch)) -> (total, items)`; `options`: the
        run's TrainOptions (None outside training), for task-specific settings."""
        raise NotImplementedError

    def loss_arguments(self, batch: dict) -> tuple:
        """The batch entries the loss takes after the model outputs."""
        raise NotImplementedError

    def loader_options(self, options: Any = None) -> dict:
        """Extra keyword arguments of the data loaders (e.g. mask targets); `options` as for `loss`."""
        return {}

    def postprocess(self, output: Any, conf: float, iou: float, max_det: int, classes: Optional[Sequence[int]] = None,
                    agnostic: bool = False, multi_label: bool = False) -> list:
        """A backend's output for a batch -> per image predictions in the batch's (letterboxed) pixels."""
        raise NotImplementedError

    def detections(self, prediction: Any) -> Any:
        """One image's prediction (an element of `postprocess`'s list) -> its detections (n, 6 + ...) tensor
        [x1, y1, x2, y2, conf, cls, ...] in letterboxed pixels."""
        raise NotImplementedError

    def evaluators(self, names: Sequence[str], max_det: int, save_json: bool, category_ids: Optional[Sequence],
                   coco_ids: Optional[dict]) -> list[Evaluator]:
        raise NotImplementedError

    def fitness(self, metrics: dict) -> float:
        """The scalar that picks best.pt."""
        raise NotImplementedError

    def results(self, image: Any, path: str, frame: Optional[int], prediction: Any, letterbox: Letterbox,
                names: Sequence[str], retina_masks: bool = False) -> Any:
        """One image's prediction -> its Results in original pixels. `retina_masks`: masks computed at the
        original resolution instead of upsampled from the network input (the official --retina-masks; tasks
        without masks ignore it)."""
        raise NotImplementedError

    def plot_batch(self, batch: dict, path: Path, names: Optional[Sequence[str]] = None) -> None:
        raise NotImplementedError

    def export_graph(self, model: nn.Module, nms: bool, conf: float, iou: float, max_det: int) -> ExportGraph:
        raise NotImplementedError

    def export_differences(self, got: Any, expected: Any, nms: bool, conf: float, iou: float, max_det: int
                           ) -> dict:
        """An exported model's outputs `got` vs the PyTorch model's `expected` on the same input (every output;
        with `nms`, against `postprocess(expected)`): the exporter's check, printed and returned."""
        raise NotImplementedError
