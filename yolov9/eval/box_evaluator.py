"""Box evaluation: one COCO matching gives AP and the P/R/F1 curves; plus a confusion matrix and COCO results rows.

Rule (docs/eval.md): detections and labels are mapped back to original pixels and matched with COCO's rules (per
image and class, best score first, at most `max_det` per image and class). AP per class and IoU threshold comes
from that matching; P and R are the precision and recall at IoU 0.5 of the same matching, at the confidence
where the mean F1 over classes is highest.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch

from yolov9.eval.coco import CocoMatching, evaluate_arrays
from yolov9.eval.coco_results import detection_rows, image_id
from yolov9.eval.evaluator import Evaluator
from yolov9.eval.metrics import confusion_matrix, precision_recall_curves
from yolov9.ops.boxes import denormalize_boxes, xywh2xyxy


def ground_truth(batch: dict, i: int) -> torch.Tensor:
    """(m, 5) [cls, x1, y1, x2, y2] of image i of a val batch, in the ORIGINAL image's pixels."""
    targets = batch["targets"]
    labels = targets[targets[:, 0] == i, 1:].cpu()
    boxes = denormalize_boxes(xywh2xyxy(labels[:, 1:5]), batch["images"].shape[2:])
    return torch.cat((labels[:, :1], batch["letterboxes"][i].boxes_to_original(boxes)), 1)


def image_rank(image_ids: Sequence) -> np.ndarray:
    """Rank of each image when sorted by id (numbers first), the order in which pycocotools breaks ties."""
    order = sorted(range(len(image_ids)), key=lambda k: (isinstance(image_ids[k], str), image_ids[k]))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


class BoxEvaluator(Evaluator):
    """Boxes of every image mapped back to original pixels; `evaluate()` scores them with COCO's rules.

    names: class names; category_ids / coco_ids: the dataset's COCO category ids per class and image ids per
    path (None for YOLO txt datasets); max_det: detections per image kept by COCO's matching; save_json: collect
    COCO results rows.
    """

    def __init__(self, names: Sequence[str], max_det: int = 300, save_json: bool = False,
                 category_ids: Optional[Sequence] = None, coco_ids: Optional[Mapping[str, Any]] = None):
        self.names, self.nc, self.max_det, self.save_json = list(names), len(names), max_det, save_json
        self.category_ids, self.coco_ids = category_ids, coco_ids
        self.reset()

    def reset(self) -> None:
        self.detections: list[torch.Tensor] = []  # per image (n, 7) [x1, y1, x2, y2, conf, cls, image index]
        self.labels: list[torch.Tensor] = []  # per image (m, 6) [cls, x1, y1, x2, y2, image index]
        self.image_ids: list = []
        self.rows: list[dict] = []
        self.matrix = np.zeros((self.nc + 1, self.nc + 1), dtype=np.int64)

    def process(self, batch: dict, predictions: Sequence[torch.Tensor]) -> None:
        for i, det in enumerate(predictions):
            labels = ground_truth(batch, i)
            det = det[:, :6].detach().float().cpu().clone()
            det[:, :4] = batch["letterboxes"][i].boxes_to_original(det[:, :4])
            index = float(len(self.image_ids))
            self.image_ids.append(image_id(batch["paths"][i], self.coco_ids))
            self.detections.append(torch.cat((det, det.new_full((len(det), 1), index)), 1))
            self.labels.append(torch.cat((labels, labels.new_full((len(labels), 1), index)), 1))
            self.matrix += confusion_matrix(det, labels, self.nc)
            if self.save_json:
                self.rows += detection_rows(self.image_ids[-1], det[:, :4].numpy(), det[:, 4].numpy(),
                                            det[:, 5].numpy(), self.category_ids)

    def evaluate(self) -> dict[str, Any]:
        """precision, recall, mAP50, mAP50-95, per_class, confusion_matrix, images, instances, curves, json rows."""
        det = torch.cat(self.detections).numpy().astype(np.float64) if self.detections else np.zeros((0, 7))
        labels = torch.cat(self.labels).numpy().astype(np.float64) if self.labels else np.zeros((0, 6))
        rank = image_rank(self.image_ids)
        matching = evaluate_arrays(labels[:, 1:5], labels[:, 0], rank[labels[:, 5].astype(np.int64)], det[:, :4],
                                   det[:, 4], det[:, 5], rank[det[:, 6].astype(np.int64)], self.nc,
                                   max_det=self.max_det)
        return {**matching_metrics(matching, det[:, 4], det[:, 5], self.names), "images": len(self.image_ids),
                "confusion_matrix": self.matrix, "json_rows": self.rows}


def matching_metrics(matching: CocoMatching, scores: np.ndarray, classes: np.ndarray, names: Sequence[str]
                     ) -> dict[str, Any]:
    """precision, recall, mAP50, mAP50-95, instances, per_class and curves of one COCO matching of detections
    with `scores` and `classes` (D,) (the box evaluator's and the mask evaluator's summary)."""
    curves = precision_recall_curves(matching.true_positive[:, 0], ~matching.ignored[:, 0], scores, classes,
                                     matching.gt_counts)
    curves["ap"] = ap = matching.ap
    seen = curves["positives"] > 0

    def mean(values: np.ndarray) -> float:
        return float(values[seen].mean()) if seen.any() else 0.0

    return {"precision": mean(curves["precision"]), "recall": mean(curves["recall"]),
            "mAP50": mean(ap[:, 0]), "mAP50-95": mean(ap.mean(1)),
            "instances": int(curves["positives"].sum()),
            "per_class": {names[c]: {"precision": float(curves["precision"][c]),
                                     "recall": float(curves["recall"][c]),
                                     "instances": int(curves["positives"][c]),
                                     "mAP50": float(ap[c, 0]), "mAP50-95": float(ap[c].mean())}
                          for c in np.nonzero(seen)[0]},
            "curves": curves}
