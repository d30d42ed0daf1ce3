"""Instance segmentation: SegmentationLoss, NMS keeping mask coefficients, box + mask evaluators, Results with
masks, export with prototypes (and in-graph NMS that keeps each detection's coefficients).

Decoded model output (eval mode, TorchBackend, plain ONNX export `output0`, `output1`): pred (B, 4 + nc + nm, A)
= boxes xywh input pixels, sigmoid scores, raw mask coefficients; prototypes (B, nm, H/4, W/4). With in-graph NMS:
num_dets (B, 1), boxes (B, K, 4) xyxy, scores (B, K), classes (B, K), coefficients (B, K, nm), protos. Either way
`postprocess` gives per image a `SegmentPrediction`; masks are decoded from it only where they are needed
(evaluation, Results), as sigmoid(coefficients . prototypes) cropped to the box, at the input or the original
resolution (`yolov9.eval.mask_evaluator.original_masks`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import nn

from yolov9.cfg.hyp import Hyperparameters
from yolov9.eval.box_evaluator import BoxEvaluator
from yolov9.eval.evaluator import Evaluator
from yolov9.eval.mask_evaluator import DetectionsOf, MaskEvaluator, SegmentPrediction, original_masks
from yolov9.loss.segmentation_loss import SegmentationLoss
from yolov9.ops.letterbox import Letterbox
from yolov9.ops.nms import non_max_suppression
from yolov9.plots.training import save_batch_plot
from yolov9.tasks.base import ExportGraph
from yolov9.tasks.detect import NMS_OUTPUTS, DetectTask, in_graph_detections, nms_differences
from yolov9.tasks.end_to_end import EndToEnd
from yolov9.tasks.results import Masks, Results

MASK_RATIO = 4  # mask targets at 1/4 of the input, the prototypes' resolution
PLAIN_OUTPUTS = {"output0": {0: "batch", 2: "anchors"}, "output1": {0: "batch", 2: "height", 3: "width"}}
SEGMENT_NMS_OUTPUTS = NMS_OUTPUTS + ("coefficients", "protos")


class SegmentEndToEnd(EndToEnd):
    """Segmentation model + in-graph NMS: the detection outputs, each kept detection's mask coefficients
    (B, K, nm) and the prototypes (B, nm, H/4, W/4); masks are decoded outside the graph (see the module)."""

    def forward(self, images: torch.Tensor):
        prediction, prototypes = self.model(images)
        return (*self.select(prediction.float(), prototypes.shape[1]), prototypes.float())


def target_masks(batch: dict) -> torch.Tensor:
    """One binary mask per target row (n, h, w) from the batch's masks: overlap maps (B, h, w) with value k + 1 on
    the k-th row of each image, or already one mask per row (the two agree when they cannot be told apart)."""
    masks, targets = batch["masks"], batch["targets"]
    if masks.shape[0] == len(targets) and not bool((masks > 1).any()):
        return masks > 0
    image = targets[:, 0].long()
    slot = torch.arange(len(image)) - torch.searchsorted(image, image)  # k-th row of its image (rows by image)
    return masks[image] == (slot + 1).view(-1, 1, 1).to(masks.dtype)


class SegmentTask(DetectTask):
    """Detection plus one mask per detection (the official Segment / DSegment / DualDSegment heads)."""

    name = "segment"
    metric_keys = ("precision", "recall", "mAP50", "mAP50-95", "mask/precision", "mask/recall", "mask/mAP50",
                   "mask/mAP50-95", "fitness")
    table_groups = (("Box", ""), ("Mask", "mask/"))

    def loss(self, model: nn.Module, hyp: Optional[Hyperparameters] = None, options: Any = None
             ) -> SegmentationLoss:
        return SegmentationLoss(model, hyp, overlap=self._overlap(options))

    def loss_arguments(self, batch: dict) -> tuple:
        return batch["targets"], batch["masks"]

    def loader_options(self, options: Any = None) -> dict:
        return {"masks": True, "overlap": self._overlap(options), "mask_ratio": MASK_RATIO}

    @staticmethod
    def _overlap(options: Any) -> bool:
        return bool(getattr(options, "overlap_mask", True)) if options is not None else True

    def postprocess(self, output: Any, conf: float, iou: float, max_det: int, classes: Optional[Sequence[int]] = None,
                    agnostic: bool = False, multi_label: bool = False) -> list[SegmentPrediction]:
        """(pred, prototypes) -> NMS keeping the coefficients; in-graph NMS outputs -> filtered. Per image a
        SegmentPrediction: detections (n, 6 + nm), its prototypes (nm, H/4, W/4)."""
        *detected, prototypes = output
        if len(detected) == 1:
            detections = non_max_suppression(detected[0], conf, iou, classes=classes, agnostic=agnostic,
                                             multi_label=multi_label, max_det=max_det, nm=prototypes.shape[1])
        else:
            detections = in_graph_detections(detected, conf, max_det, classes)
        return [SegmentPrediction(d, p) for d, p in zip(detections, prototypes)]

    def detections(self, prediction: SegmentPrediction) -> torch.Tensor:
        return prediction.detections

    def evaluators(self, names: Sequence[str], max_det: int, save_json: bool, category_ids: Optional[Sequence],
                   coco_ids: Optional[dict]) -> list[Evaluator]:
        """Boxes (plain keys) and masks ("mask/" keys); the mask evaluator writes the JSON rows (bbox + RLE)."""
        return [DetectionsOf(BoxEvaluator(names, max_det, False, category_ids, coco_ids)),
                MaskEvaluator(names, max_det, save_json, category_ids, coco_ids)]

    def fitness(self, metrics: dict) -> float:
        """The official segmentation fitness: 0.1 mAP50 + 0.9 mAP50-95, of boxes plus of masks."""
        return super().fitness(metrics) + 0.1 * metrics["mask/mAP50"] + 0.9 * metrics["mask/mAP50-95"]

    def results(self, image: np.ndarray, path: str, frame: Optional[int], prediction: SegmentPrediction,
                letterbox: Letterbox, names: Sequence[str], retina_masks: bool = False) -> Results:
        """Boxes and masks in original pixels: masks upsampled from the prototypes to the input, then mapped to
        the image (official predict), or with `retina_masks` computed at the original resolution."""
        result = super().results(image, path, frame, prediction.detections, letterbox, names)
        result.masks = Masks(original_masks(prediction, letterbox, "native" if retina_masks else "upsample").numpy())
        return result

    def plot_batch(self, batch: dict, path: Path, names: Optional[Sequence[str]] = None) -> None:
        save_batch_plot(batch["images"], batch["targets"], path, names, masks=target_masks(batch))

    def export_graph(self, model: nn.Module, nms: bool, conf: float, iou: float, max_det: int) -> ExportGraph:
        if nms:
            axes = {name: {0: "batch"} for name in SEGMENT_NMS_OUTPUTS}
            axes["protos"] = {0: "batch", 2: "height", 3: "width"}
            return ExportGraph(SegmentEndToEnd(model, conf, iou, max_det), axes)
        return ExportGraph(model, dict(PLAIN_OUTPUTS))

    def export_differences(self, got: Any, expected: Any, nms: bool, conf: float, iou: float, max_det: int
                           ) -> dict:
        """Boxes, scores, coefficients and prototypes (plain); counts, boxes, coefficients, prototypes (NMS)."""
        prototypes = {"max_abs_diff_protos": float((got[-1] - expected[1]).abs().max())}
        if nms:
            reference = [p.detections for p in self.postprocess(expected, conf, iou, max_det)]
            result = nms_differences(got, reference)
            counts = result["detections"]
            coefficients = max((float((got[4][i, :n] - r[:, 6:]).abs().max()) for i, (n, r) in
                                enumerate(zip(counts, reference)) if n), default=0.0)
            return {**result, "max_abs_diff_coefficients": coefficients if result["same_count"] else float("nan"),
                    **prototypes}
        nc = expected[0].shape[1] - 4 - expected[1].shape[1]
        diff = (got[0] - expected[0]).abs()
        return {"max_abs_diff_boxes": float(diff[:, :4].max()), "max_abs_diff_scores": float(diff[:, 4:4 + nc].max()),
                "max_abs_diff_coefficients": float(diff[:, 4 + nc:].max()), **prototypes}
