"""Task-aligned assignment (TOOD / PP-YOLOE): which anchors learn which ground-truth box, and how strongly."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from yolov9.ops.boxes import bbox_iou


def anchors_inside_boxes(anchor_points: torch.Tensor, gt_boxes: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """Anchor centres strictly inside each box (all four margins > eps): points (A, 2), boxes (B, n, 4) -> (B, n, A)."""
    x, y = anchor_points[:, 0], anchor_points[:, 1]
    x1, y1, x2, y2 = (gt_boxes[..., i:i + 1] for i in range(4))  # (B, n, 1) each
    return (x - x1 > eps) & (y - y1 > eps) & (x2 - x > eps) & (y2 - y > eps)


class Assignment(NamedTuple):
    """Targets of every anchor. B images, A anchors, nc classes.

    labels (B, A) int64; boxes (B, A, 4) xyxy; scores (B, A, nc); fg_mask (B, A) bool; gt_index (B, A) int64: the
    image's target row each anchor learns (0 for background), e.g. to pick its ground-truth mask.
    """

    labels: torch.Tensor
    boxes: torch.Tensor
    scores: torch.Tensor
    fg_mask: torch.Tensor
    gt_index: torch.Tensor


class TaskAlignedAssigner(nn.Module):
    """Assign anchors to boxes by the alignment metric t = score^alpha * CIoU^beta.

    Candidates are the anchors whose centre lies inside a box; each box keeps its `topk` candidates of highest t;
    an anchor claimed by several boxes goes to the box it overlaps most. Target scores are one-hot classes scaled
    per box by t / max(t) * max(CIoU), so the best anchor of a box aims at that box's best overlap.
    """

    def __init__(self, topk: int = 10, num_classes: int = 80, alpha: float = 0.5, beta: float = 6.0,
                 eps: float = 1e-9):
        super().__init__()
        self.topk = topk
        self.num_classes = num_classes
        self.alpha = alpha
        self.beta = beta
        self.eps = eps

    @torch.no_grad()
    def forward(self, pd_scores: torch.Tensor, pd_bboxes: torch.Tensor, anc_points: torch.Tensor,
                gt_labels: torch.Tensor, gt_bboxes: torch.Tensor, mask_gt: torch.Tensor) -> Assignment:
        """Targets for every anchor.

        pd_scores (B, A, nc) probabilities; pd_bboxes (B, A, 4) xyxy; anc_points (A, 2), same units as the boxes;
        gt_labels (B, n, 1); gt_bboxes (B, n, 4) xyxy; mask_gt (B, n, 1), nonzero for real (not padding) rows.
        Background anchors carry the label and box of their image's first row (gt_index 0), with zero scores
        (as officially).
        """
        batch, anchors, nc = pd_scores.shape
        n_boxes = gt_bboxes.shape[1]
        if n_boxes == 0:
            no_index = torch.zeros((batch, anchors), dtype=torch.long, device=pd_scores.device)
            return Assignment(torch.full_like(no_index, nc), torch.zeros_like(pd_bboxes), torch.zeros_like(pd_scores),
                              no_index.bool(), no_index)
        labels = gt_labels.view(batch, n_boxes).long()
        valid = mask_gt.view(batch, n_boxes, 1).bool()
        inside = anchors_inside_boxes(anc_points, gt_bboxes) & valid
        align_metric, overlaps = self.box_metrics(pd_scores, pd_bboxes, labels, gt_bboxes, inside)
        mask_pos = self.topk_candidates(align_metric, valid) & inside
        self.resolve_conflicts(mask_pos, align_metric, overlaps, pd_scores, pd_bboxes, labels, gt_bboxes)

        fg_mask = mask_pos.any(1)  # (B, A)
        box_order = torch.arange(n_boxes, device=mask_pos.device).view(1, -1, 1)
        box_index = (mask_pos * box_order).sum(1)  # (B, A): the one assigned box; 0 for background
        target_labels = labels.gather(1, box_index)
        target_bboxes = gt_bboxes.gather(1, box_index.unsqueeze(-1).expand(-1, -1, 4))

        align_metric = align_metric * mask_pos
        max_metric = align_metric.amax(-1, keepdim=True)  # (B, n, 1)
        max_overlap = (overlaps * mask_pos).amax(-1, keepdim=True)
        norm_metric = (align_metric * max_overlap / (max_metric + self.eps)).amax(1)  # (B, A)
        target_scores = torch.zeros_like(pd_scores)
        target_scores.scatter_(-1, target_labels.unsqueeze(-1), (norm_metric * fg_mask).unsqueeze(-1))
        return Assignment(target_labels, target_bboxes, target_scores, fg_mask, box_index)

    def pair_metrics(self, pd_scores: torch.Tensor, pd_bboxes: torch.Tensor, labels: torch.Tensor,
                     gt_bboxes: torch.Tensor, image: torch.Tensor, box: torch.Tensor, anchor: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Alignment metric and CIoU (clamped at 0) of the (image, box, anchor) index triples: (K,) each."""
        overlaps = bbox_iou(gt_bboxes[image, box], pd_bboxes[image, anchor], kind="ciou").squeeze(-1).clamp_(min=0)
        scores = pd_scores[image, anchor, labels[image, box]]
        return scores.pow(self.alpha) * overlaps.pow(self.beta), overlaps

    def box_metrics(self, pd_scores: torch.Tensor, pd_bboxes: torch.Tensor, labels: torch.Tensor,
                    gt_bboxes: torch.Tensor, inside: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Alignment metric and CIoU of the (box, anchor) pairs with the anchor inside the box, 0 elsewhere.

        inside (B, n, A) bool -> (B, n, A) each. Only the candidate pairs are computed (a few percent of all).
        """
        align_metric = torch.zeros(inside.shape, dtype=pd_scores.dtype, device=pd_scores.device)
        overlaps = torch.zeros_like(align_metric)
        pairs = inside.nonzero(as_tuple=True)
        align_metric[pairs], overlaps[pairs] = self.pair_metrics(pd_scores, pd_bboxes, labels, gt_bboxes, *pairs)
        return align_metric, overlaps

    def resolve_conflicts(self, mask_pos: torch.Tensor, align_metric: torch.Tensor, overlaps: torch.Tensor,
                          pd_scores: torch.Tensor, pd_bboxes: torch.Tensor, labels: torch.Tensor,
                          gt_bboxes: torch.Tensor) -> None:
        """In place: an anchor claimed by several boxes goes to the box of max CIoU among ALL boxes of its image.

        As in the official assigner the winner may be a box that did not claim the anchor; its metric and
        overlap at that anchor are filled in, so that normalisation sees them.
        """
        image, anchor = (mask_pos.sum(1) > 1).nonzero(as_tuple=True)  # (M,) each
        if len(image) == 0:
            return
        every_box = bbox_iou(gt_bboxes[image], pd_bboxes[image, anchor].unsqueeze(1), kind="ciou")
        best = every_box.squeeze(-1).clamp_(min=0).argmax(1)  # (M,)
        mask_pos[image, :, anchor] = False
        mask_pos[image, best, anchor] = True
        metric, overlap = self.pair_metrics(pd_scores, pd_bboxes, labels, gt_bboxes, image, best, anchor)
        align_metric[image, best, anchor], overlaps[image, best, anchor] = metric, overlap

    def topk_candidates(self, metrics: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The `topk` anchors of highest metric per valid box: metrics (B, n, A), valid (B, n, 1) -> bool (B, n, A)."""
        k = min(self.topk, metrics.shape[-1])
        top_index = metrics.topk(k, dim=-1).indices
        chosen = torch.zeros(metrics.shape, dtype=torch.bool, device=metrics.device)
        chosen.scatter_(-1, top_index, True)
        return chosen & valid
