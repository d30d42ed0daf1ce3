"""Detection model + NMS as one traceable module: the graph of `export --nms` (ONNX NonMaxSuppression).

Outputs: `num_dets` (B, 1) int64, `boxes` (B, K, 4) xyxy input pixels, `scores` (B, K), `classes` (B, K) int64, best
first; rows past num_dets are zero. `select` also keeps per-anchor extra rows (segmentation: mask coefficients).
"""
from __future__ import annotations

import torch
from torch import nn

from yolov9.ops.boxes import xywh2xyxy


class _NonMaxSuppression(torch.autograd.Function):
    """Traces to ONNX NonMaxSuppression: boxes (B, A, 4) xyxy, scores (B, nc, A) -> selected (N, 3) int64.

    Each selected row is [batch, class, anchor]; suppression is per class (IoU > iou drops a box) and only
    scores > score_threshold are kept. The eager forward only has to give the tracer a tensor of that form.
    """

    @staticmethod
    def forward(ctx, boxes, scores, max_per_class: int, iou: float, score_threshold: float):
        return torch.zeros((1, 3), dtype=torch.int64, device=boxes.device)

    @staticmethod
    def symbolic(g, boxes, scores, max_per_class: int, iou: float, score_threshold: float):
        return g.op("NonMaxSuppression", boxes, scores,
                    g.op("Constant", value_t=torch.tensor([max_per_class], dtype=torch.int64)),
                    g.op("Constant", value_t=torch.tensor([iou], dtype=torch.float32)),
                    g.op("Constant", value_t=torch.tensor([score_threshold], dtype=torch.float32)))


class EndToEnd(nn.Module):
    """Model + class-aware NMS (each anchor keeps its best class, like our PyTorch NMS) + top-K per image."""

    def __init__(self, model: nn.Module, conf: float = 0.25, iou: float = 0.45, max_det: int = 300):
        super().__init__()
        self.model, self.conf, self.iou, self.max_det = model, conf, iou, max_det

    def forward(self, images: torch.Tensor):
        return self.select(self.model(images).float())[:4]

    def select(self, prediction: torch.Tensor, nm: int = 0) -> tuple[torch.Tensor, ...]:
        """(B, 4 + nc + nm, A) -> num_dets, boxes, scores, classes and the `nm` trailing rows of each kept
        detection's anchor (B, K, nm) (a segment head's mask coefficients; zero past num_dets)."""
        nc = prediction.shape[1] - 4 - nm
        boxes = xywh2xyxy(prediction[:, :4].transpose(1, 2))  # (B, A, 4)
        scores = prediction[:, 4:4 + nc]  # (B, nc, A)
        extras = prediction[:, 4 + nc:].transpose(1, 2)  # (B, A, nm)
        class_ids = torch.ones_like(scores[:1, :, :1]).cumsum(1) - 1  # (1, nc, 1), traced shape-free
        best = scores * (class_ids == scores.argmax(1, keepdim=True))  # only the best class (first on ties)
        selected = _NonMaxSuppression.apply(boxes, best, self.max_det, self.iou, self.conf)
        image, cls, anchor = selected[:, 0], selected[:, 1], selected[:, 2]
        k = self.max_det
        det_scores = torch.cat((best[image, cls, anchor], best.new_full((k,), -1.0)))  # (N + K,) padded
        det_boxes = torch.cat((boxes[image, anchor], boxes.new_zeros((k, 4))))
        det_classes = torch.cat((cls, cls.new_zeros((k,))))
        det_extras = torch.cat((extras[image, anchor], extras.new_zeros((k, nm))))
        image_ids = torch.ones_like(scores[:, 0, :1]).cumsum(0) - 1  # (B, 1) = 0..B-1, traced shape-free
        owner = torch.cat((image.float(), best.new_full((k,), -1.0)))
        per_image = torch.where(owner[None] == image_ids, det_scores[None], best.new_full((1,), -1.0))
        top_scores, top_index = per_image.topk(k, dim=1)  # (B, K)
        valid = top_scores > 0
        num_dets = valid.sum(1, keepdim=True)
        out_boxes = det_boxes[top_index] * valid[..., None]
        out_scores = top_scores * valid
        out_classes = det_classes[top_index] * valid
        return num_dets, out_boxes, out_scores, out_classes, det_extras[top_index] * valid[..., None]
