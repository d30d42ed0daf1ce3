"""The YOLOv9 training objective over any number of head branches (PGI: auxiliary branches + main branch)."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import torch
from torch import nn

from yolov9.cfg import load_hyp
from yolov9.errors import ConfigError
from yolov9.loss.assigner import TaskAlignedAssigner
from yolov9.loss.targets import pad_targets
from yolov9.loss.terms import ciou_loss, class_loss, distribution_focal_loss
from yolov9.ops.anchors import bbox2dist, dist2bbox, make_anchors

BranchMaps = Sequence[torch.Tensor]  # one branch: per level (B, 4 * reg_max + nc, H_i, W_i)


class DetectionLoss:
    """Task-aligned loss: BCE class loss, 1 - CIoU box loss and DFL, for every branch of the head.

    Each branch gets its own assignment from its own (detached) predictions. Branch losses are combined with
    weights `aux_weight` for every auxiliary branch and 1.0 for the main (last) one, then multiplied by the gains
    `box`, `cls`, `dfl`. All settings come from the hyperparameters (`hyp`, else `model.hyp`, else the defaults).
    """

    def __init__(self, model: nn.Module, hyp: Optional[Mapping[str, Any]] = None):
        hyp = load_hyp(hyp if hyp is not None else getattr(model, "hyp", None))
        if hyp["label_smoothing"]:
            raise ConfigError(f"hyperparameter label_smoothing={hyp['label_smoothing']}: not supported by the "
                              "task-aligned loss (the official loss ignores it too); set it to 0.0")
        head = model.head
        self.nc, self.reg_max = head.nc, head.reg_max
        self.strides = [float(s) for s in head.stride]
        self.branch_weights = [float(hyp["aux_weight"])] * (head.branches - 1) + [1.0]
        self.gains = torch.tensor([hyp["box"], hyp["cls"], hyp["dfl"]], dtype=torch.float32)
        self.cls_pos_weight = float(hyp["cls_pw"])
        self.focal_gamma = float(hyp["fl_gamma"])
        self.assigner = TaskAlignedAssigner(topk=int(hyp["tal_topk"]), num_classes=self.nc,
                                            alpha=float(hyp["tal_alpha"]), beta=float(hyp["tal_beta"]))

    def __call__(self, outputs: Sequence[BranchMaps], targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """outputs: [branch][level] raw maps; targets (n, 6) [image, class, cx, cy, w, h] normalised.

        Returns (total, items): total = sum of the weighted, gained items x batch size (what to backpropagate);
        items = detached (box, cls, dfl), shape (3,).
        """
        per_branch = self.branch_losses(outputs, targets)  # (branches, 3)
        weights = per_branch.new_tensor(self.branch_weights).unsqueeze(1)
        items = (per_branch * weights).sum(0) * self.gains.to(per_branch.device)
        return items.sum() * outputs[0][0].shape[0], items.detach()

    @torch.no_grad()
    def branch_items(self, outputs: Sequence[BranchMaps], targets: torch.Tensor) -> torch.Tensor:
        """Gained (box, cls, dfl) of every branch, unweighted: (branches, 3). For per-branch validation loss."""
        per_branch = self.branch_losses(outputs, targets)
        return per_branch * self.gains.to(per_branch.device)

    def branch_losses(self, outputs: Sequence[BranchMaps], targets: torch.Tensor) -> torch.Tensor:
        """Ungained (box, cls, dfl) per branch: (branches, 3), differentiable."""
        if len(outputs) != len(self.branch_weights):
            raise ValueError(f"got {len(outputs)} branches of maps for a head with {len(self.branch_weights)}")
        first = outputs[0][0]
        anchor_points, anchor_strides = make_anchors(list(outputs[0]), torch.tensor(self.strides), 0.5)
        anchor_points, anchor_strides = anchor_points.float(), anchor_strides.float()
        image_size = (first.shape[2] * self.strides[0], first.shape[3] * self.strides[0])
        gt = pad_targets(targets.to(first.device).float(), first.shape[0], image_size)
        return torch.stack([self.single_branch(maps, anchor_points, anchor_strides, *gt) for maps in outputs])

    def single_branch(self, maps: BranchMaps, anchor_points: torch.Tensor, anchor_strides: torch.Tensor,
                      gt_labels: torch.Tensor, gt_boxes: torch.Tensor, gt_mask: torch.Tensor) -> torch.Tensor:
        """(box, cls, dfl) of one branch, each normalised by max(sum of target scores, 1): (3,)."""
        batch = maps[0].shape[0]
        flat = torch.cat([m.flatten(2) for m in maps], 2)  # (B, 4 * reg_max + nc, A): channels first throughout
        flat = flat.to(torch.promote_types(flat.dtype, torch.float32))  # half precision maps -> float32
        box_logits, class_logits = flat.split((4 * self.reg_max, self.nc), 1)
        box_logits = box_logits.view(batch, 4, self.reg_max, -1)  # (B, side, bin, A)
        bins = torch.arange(self.reg_max, device=flat.device, dtype=flat.dtype).view(1, 1, -1, 1)
        pred_ltrb = (box_logits.softmax(2) * bins).sum(2).transpose(1, 2)  # (B, A, 4) expected distances
        pred_boxes = dist2bbox(pred_ltrb, anchor_points, xywh=False)  # xyxy, grid units

        _, target_boxes, target_scores, fg_mask = self.assigner(
            class_logits.detach().sigmoid().transpose(1, 2), pred_boxes.detach() * anchor_strides,
            anchor_points * anchor_strides, gt_labels, gt_boxes, gt_mask)
        score_sum = target_scores.sum().clamp(min=1)
        # target_scores (B, A, nc) is laid out like its input, channels first: transposed back, it is contiguous
        cls = class_loss(class_logits, target_scores.transpose(1, 2), self.cls_pos_weight, self.focal_gamma)
        cls = cls.sum() / score_sum
        if not bool(fg_mask.any()):
            zero = flat.sum() * 0.0  # keeps the graph connected
            return torch.stack((zero, cls, zero))

        image, anchor = fg_mask.nonzero(as_tuple=True)  # (N,) each, row-major like a boolean mask
        weight = target_scores.sum(-1)[image, anchor]  # (N,)
        fg_targets = target_boxes[image, anchor] / anchor_strides[anchor]  # xyxy, grid units
        box = (ciou_loss(pred_boxes[image, anchor], fg_targets) * weight).sum() / score_sum
        target_dist = bbox2dist(anchor_points[anchor], fg_targets, self.reg_max - 1)  # in [0, reg_max - 1.01]
        fg_logits = box_logits[image, :, :, anchor]  # (N, 4, reg_max); gradient lands in the maps' own layout
        dfl = (distribution_focal_loss(fg_logits, target_dist) * weight).sum() / score_sum
        return torch.stack((box, cls, dfl))
