"""The three loss terms, per anchor: class BCE (optionally focal), 1 - CIoU, and distribution focal loss."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from yolov9.ops.boxes import bbox_iou


def class_loss(logits: torch.Tensor, target_scores: torch.Tensor, pos_weight: float = 1.0,
               focal_gamma: float = 0.0, focal_alpha: float = 0.25) -> torch.Tensor:
    """Elementwise BCE-with-logits of same-shaped logits and targets (the loss passes (B, nc, A)); with
    focal_gamma > 0 the focal form of Lin et al."""
    weight = None if pos_weight == 1.0 else torch.tensor([pos_weight], device=logits.device, dtype=logits.dtype)
    loss = F.binary_cross_entropy_with_logits(logits, target_scores, pos_weight=weight, reduction="none")
    if focal_gamma > 0:
        prob = logits.sigmoid()
        p_t = target_scores * prob + (1 - target_scores) * (1 - prob)
        alpha_t = target_scores * focal_alpha + (1 - target_scores) * (1 - focal_alpha)
        loss = loss * alpha_t * (1.0 - p_t) ** focal_gamma
    return loss


def ciou_loss(pred_boxes: torch.Tensor, target_boxes: torch.Tensor) -> torch.Tensor:
    """1 - CIoU of aligned (N, 4) xyxy boxes -> (N,)."""
    return 1.0 - bbox_iou(pred_boxes, target_boxes, kind="ciou").squeeze(-1)


def distribution_focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """DFL (Li et al., GFL): logits (N, 4, bins), target distances (N, 4) in [0, bins - 1) -> (N,) side mean.

    Cross-entropy to the two bins around each target, weighted by closeness, so the expectation lands on it.
    """
    left = target.long()
    weight_left = (left + 1).to(target.dtype) - target
    log_prob = logits.log_softmax(-1)
    nll = -log_prob.gather(-1, torch.stack((left, left + 1), -1))  # (N, 4, 2)
    return (nll[..., 0] * weight_left + nll[..., 1] * (1 - weight_left)).mean(-1)
