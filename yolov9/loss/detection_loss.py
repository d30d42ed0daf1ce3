"""The YOLOv9 training objective over any number of head branches (PGI: auxiliary branches + main branch)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Union

import torch
from torch import nn

from yolov9.cfg.hyp import Hyperparameters, as_hyperparameters
from yolov9.errors import ConfigError
from yolov9.loss.assigner import Assignment, TaskAlignedAssigner
from yolov9.loss.targets import pad_targets
from yolov9.loss.terms import ciou_loss, class_loss, distribution_focal_loss
from yolov9.ops.anchors import bbox2dist, dist2bbox, make_anchors

BranchMaps = Sequence[torch.Tensor]  # one branch: per level (B, 4 * reg_max + nc, H_i, W_i)


@dataclass
class LossTargets:
    """What the losses of all branches share: the anchors and the batch's ground truth, padded per image.

    anchor_points (A, 2) grid units; anchor_strides (A, 1); labels (B, m, 1); boxes (B, m, 4) xyxy pixels;
    valid (B, m, 1) bool (False on padding); image_size (h, w) pixels.
    """

    anchor_points: torch.Tensor
    anchor_strides: torch.Tensor
    labels: torch.Tensor
    boxes: torch.Tensor
    valid: torch.Tensor
    image_size: tuple[float, float]

    @property
    def batch_size(self) -> int:
        return self.labels.shape[0]


class DetectionLoss:
    """Task-aligned loss: BCE class loss, 1 - CIoU box loss and DFL, for every branch of the head.

    Each branch gets its own assignment from its own (detached) predictions. Branch losses are combined with
    weights `aux_weight` for every auxiliary branch and 1.0 for the main (last) one, then multiplied by the gains
    named in `item_names`. All settings come from the hyperparameters (`hyp`, else `model.hyp`, else the official
    recipe); a mapping holds values that replace the recipe's.
    """

    item_names: tuple[str, ...] = ("box", "cls", "dfl")

    def __init__(self, model: nn.Module, hyp: Optional[Union[Hyperparameters, Mapping[str, Any]]] = None):
        hyp = as_hyperparameters(hyp if hyp is not None else getattr(model, "hyp", None))
        if hyp.label_smoothing:
            raise ConfigError(f"hyperparameter label_smoothing={hyp.label_smoothing}: not supported by the "
                              "task-aligned loss (the official loss ignores it too); set it to 0.0")
        head = model.head
        self.nc, self.reg_max = head.nc, head.reg_max
        self.strides = [float(s) for s in head.stride]
        self.branch_weights = [hyp.aux_weight] * (head.branches - 1) + [1.0]
        self.gains = torch.tensor([getattr(hyp, name) for name in self.item_names], dtype=torch.float32)
        self.cls_pos_weight = hyp.cls_pw
        self.focal_gamma = hyp.fl_gamma
        self.assigner = TaskAlignedAssigner(topk=hyp.tal_topk, num_classes=self.nc, alpha=hyp.tal_alpha,
                                            beta=hyp.tal_beta)

    def __call__(self, outputs: Sequence[BranchMaps], targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """outputs: [branch][level] raw maps; targets (n, 6) [image, class, cx, cy, w, h] normalised.

        Returns (total, items): total = sum of the weighted, gained items x batch size (what to backpropagate);
        items = detached (box, cls, dfl), shape (3,).
        """
        return self.combine(self.branch_losses(outputs, targets), outputs[0][0].shape[0])

    @torch.no_grad()
    def branch_items(self, outputs: Sequence[BranchMaps], targets: torch.Tensor) -> torch.Tensor:
        """Gained (box, cls, dfl) of every branch, unweighted: (branches, 3). For per-branch validation loss."""
        per_branch = self.branch_losses(outputs, targets)
        return per_branch * self.gains.to(per_branch.device)

    def combine(self, per_branch: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Ungained per-branch items (branches, n) -> (total to backpropagate, detached weighted gained items (n,))."""
        weights = per_branch.new_tensor(self.branch_weights).unsqueeze(1)
        items = (per_branch * weights).sum(0) * self.gains.to(per_branch.device)
        return items.sum() * batch_size, items.detach()

    def branch_losses(self, outputs: Sequence[BranchMaps], targets: torch.Tensor) -> torch.Tensor:
        """Ungained (box, cls, dfl) per branch: (branches, 3), differentiable."""
        self.check_branches(outputs)
        shared = self.loss_targets(outputs[0], targets)
        return torch.stack([self.detection_terms(maps, shared)[0] for maps in outputs])

    def check_branches(self, outputs: Sequence[Any]) -> None:
        if len(outputs) != len(self.branch_weights):
            raise ValueError(f"got {len(outputs)} branches of maps for a head with {len(self.branch_weights)}")

    def loss_targets(self, maps: BranchMaps, targets: torch.Tensor) -> LossTargets:
        """Anchors of the level maps `maps` and the targets (n, 6) padded per image."""
        first = maps[0]
        anchor_points, anchor_strides = make_anchors(list(maps), torch.tensor(self.strides), 0.5)
        image_size = (first.shape[2] * self.strides[0], first.shape[3] * self.strides[0])
        gt = pad_targets(targets.to(first.device).float(), first.shape[0], image_size)
        return LossTargets(anchor_points.float(), anchor_strides.float(), *gt, image_size)

    def detection_terms(self, maps: BranchMaps, shared: LossTargets) -> tuple[torch.Tensor, Assignment]:
        """(box, cls, dfl) of one branch, each normalised by max(sum of target scores, 1): (3,), and its assignment."""
        batch = maps[0].shape[0]
        anchor_points, anchor_strides = shared.anchor_points, shared.anchor_strides
        flat = torch.cat([m.flatten(2) for m in maps], 2)  # (B, 4 * reg_max + nc, A): channels first throughout
        flat = flat.to(torch.promote_types(flat.dtype, torch.float32))  # half precision maps -> float32
        box_logits, class_logits = flat.split((4 * self.reg_max, self.nc), 1)
        box_logits = box_logits.view(batch, 4, self.reg_max, -1)  # (B, side, bin, A)
        bins = torch.arange(self.reg_max, device=flat.device, dtype=flat.dtype).view(1, 1, -1, 1)
        pred_ltrb = (box_logits.softmax(2) * bins).sum(2).transpose(1, 2)  # (B, A, 4) expected distances
        pred_boxes = dist2bbox(pred_ltrb, anchor_points, xywh=False)  # xyxy, grid units

        assignment = self.assigner(class_logits.detach().sigmoid().transpose(1, 2),
                                   pred_boxes.detach() * anchor_strides, anchor_points * anchor_strides,
                                   shared.labels, shared.boxes, shared.valid)
        target_scores, fg_mask = assignment.scores, assignment.fg_mask
        score_sum = target_scores.sum().clamp(min=1)
        # target_scores (B, A, nc) is laid out like its input, channels first: transposed back, it is contiguous
        cls = class_loss(class_logits, target_scores.transpose(1, 2), self.cls_pos_weight, self.focal_gamma)
        cls = cls.sum() / score_sum
        if not bool(fg_mask.any()):
            zero = flat.sum() * 0.0  # keeps the graph connected
            return torch.stack((zero, cls, zero)), assignment

        image, anchor = fg_mask.nonzero(as_tuple=True)  # (N,) each, row-major like a boolean mask
        weight = target_scores.sum(-1)[image, anchor]  # (N,)
        fg_targets = assignment.boxes[image, anchor] / anchor_strides[anchor]  # xyxy, grid units
        box = (ciou_loss(pred_boxes[image, anchor], fg_targets) * weight).sum() / score_sum
        target_dist = bbox2dist(anchor_points[anchor], fg_targets, self.reg_max - 1)  # in [0, reg_max - 1.01]
        fg_logits = box_logits[image, :, :, anchor]  # (N, 4, reg_max); gradient lands in the maps' own layout
        dfl = (distribution_focal_loss(fg_logits, target_dist) * weight).sum() / score_sum
        return torch.stack((box, cls, dfl)), assignment
