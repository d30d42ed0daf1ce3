"""Object detection: DetectionLoss, NMS, the box evaluator, Results with boxes, in-graph NMS export."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import nn

from yolov9.cfg.hyp import Hyperparameters
from yolov9.eval.box_evaluator import BoxEvaluator
from yolov9.eval.evaluator import Evaluator
from yolov9.loss import DetectionLoss
from yolov9.ops.letterbox import Letterbox
from yolov9.ops.nms import non_max_suppression
from yolov9.plots.training import save_batch_plot
from yolov9.tasks.base import ExportGraph, Task
from yolov9.tasks.end_to_end import EndToEnd
from yolov9.tasks.results import Boxes, Results

NMS_OUTPUTS = ("num_dets", "boxes", "scores", "classes")


def in_graph_detections(output: tuple, conf: float, max_det: int, classes: Optional[Sequence[int]]
                        ) -> list[torch.Tensor]:
    """The outputs of a model exported with NMS -> per image (n, 6) [x1, y1, x2, y2, conf, cls] above `conf`;
    further per-detection outputs (B, K, m) (segmentation: mask coefficients) are appended: (n, 6 + m)."""
    num, boxes, scores, labels, *extras = output
    extras = torch.cat(extras, 2) if extras else boxes[..., :0]
    detections = []
    for n, b, s, c, e in zip(num.view(-1).tolist(), boxes, scores, labels, extras):
        d = torch.cat((b[:n], s[:n, None], c[:n, None].float(), e[:n]), 1)
        keep = d[:, 4] > conf
        if classes is not None:
            keep &= torch.isin(d[:, 5].long(), torch.as_tensor(classes))
        detections.append(d[keep][:max_det])
    return detections


class DetectTask(Task):
    name = "detect"
    metric_keys = ("precision", "recall", "mAP50", "mAP50-95", "fitness")

    def loss(self, model: nn.Module, hyp: Optional[Hyperparameters] = None, options: Any = None) -> DetectionLoss:
        return DetectionLoss(model, hyp)

    def loss_arguments(self, batch: dict) -> tuple:
        return (batch["targets"],)

    def postprocess(self, output: Any, conf: float, iou: float, max_det: int, classes: Optional[Sequence[int]] = None,
                    agnostic: bool = False, multi_label: bool = False) -> list[torch.Tensor]:
        """(B, 4 + nc, A) -> NMS; an exported model's in-graph NMS outputs -> filtered. Per image (n, 6)."""
        if isinstance(output, torch.Tensor):
            return non_max_suppression(output, conf, iou, classes=classes, agnostic=agnostic,
                                       multi_label=multi_label, max_det=max_det)
        return in_graph_detections(output, conf, max_det, classes)

    def detections(self, prediction: torch.Tensor) -> torch.Tensor:
        return prediction

    def evaluators(self, names: Sequence[str], max_det: int, save_json: bool, category_ids: Optional[Sequence],
                   coco_ids: Optional[dict]) -> list[Evaluator]:
        return [BoxEvaluator(names, max_det, save_json, category_ids, coco_ids)]

    def fitness(self, metrics: dict) -> float:
        return 0.1 * metrics["mAP50"] + 0.9 * metrics["mAP50-95"]

    def results(self, image: np.ndarray, path: str, frame: Optional[int], prediction: torch.Tensor,
                letterbox: Letterbox, names: Sequence[str], retina_masks: bool = False) -> Results:
        det = prediction.detach().float().cpu().clone()
        det[:, :4] = letterbox.boxes_to_original(det[:, :4])
        return Results(image, path, list(names), Boxes(det[:, :6].numpy(), image.shape[:2]), frame)

    def plot_batch(self, batch: dict, path: Path, names: Optional[Sequence[str]] = None) -> None:
        save_batch_plot(batch["images"], batch["targets"], path, names)

    def export_graph(self, model: nn.Module, nms: bool, conf: float, iou: float, max_det: int) -> ExportGraph:
        if nms:
            return ExportGraph(EndToEnd(model, conf, iou, max_det), {name: {0: "batch"} for name in NMS_OUTPUTS})
        return ExportGraph(model, {"output": {0: "batch", 2: "anchors"}})

    def export_differences(self, got: Any, expected: Any, nms: bool, conf: float, iou: float, max_det: int
                           ) -> dict:
        if nms:
            return nms_differences(got, self.postprocess(expected, conf, iou, max_det))
        diff = (got - expected).abs()
        return {"max_abs_diff_boxes": float(diff[:, :4].max()), "max_abs_diff_scores": float(diff[:, 4:].max())}


def nms_differences(got: tuple, reference: list[torch.Tensor]) -> dict:
    """In-graph NMS outputs (num_dets, boxes, ...) vs our NMS's per image detections: counts, how many
    detections there are to compare, and the box error."""
    counts = [int(n) for n in got[0].view(-1)]
    same = counts == [len(r) for r in reference]
    box_diff = max((float((got[1][i, :n] - r[:, :4]).abs().max()) for i, (n, r) in
                    enumerate(zip(counts, reference)) if n), default=0.0) if same else float("nan")
    return {"detections": counts, "same_count": same, "compared": sum(len(r) for r in reference),
            "max_abs_diff_boxes": box_diff}
