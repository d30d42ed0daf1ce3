"""The instance-segmentation objective: the detection loss of every branch plus its mask term."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Union

import torch
from torch import nn

from yolov9.cfg.hyp import Hyperparameters
from yolov9.loss.detection_loss import DetectionLoss
from yolov9.loss.mask_loss import check_masks, mask_loss, resized_masks, target_mask_rows
from yolov9.nn.segment_head import SegmentOutput


class SegmentationLoss(DetectionLoss):
    """DetectionLoss (same assignment, box, class and DFL terms) + the mask term, items (box, seg, cls, dfl).

    The mask term uses each branch's own assignment (`yolov9.loss.mask_loss`); gains `box`, `seg`, `cls`, `dfl`
    and the auxiliary-branch weight come from the hyperparameters, as in DetectionLoss. With the official recipe
    the items equal those of the official segmentation loss. One deliberate difference: like the detection loss,
    terms are normalised by max(sum of target scores, 1) where the official segmentation loss divides by the bare
    sum (equal whenever that sum is >= 1; the official value is not finite for a batch without any box).

    overlap=True: masks (B, H, W) with value k+1 on the pixels of the image's k-th target row (the official
    loader's default); overlap=False: masks (n, H, W), one per target row. Masks at another size than the
    prototypes are resized (nearest).
    """

    item_names = ("box", "seg", "cls", "dfl")

    def __init__(self, model: nn.Module, hyp: Optional[Union[Hyperparameters, Mapping[str, Any]]] = None,
                 overlap: bool = True):
        super().__init__(model, hyp)
        self.overlap = overlap

    def __call__(self, outputs: Sequence[SegmentOutput], targets: torch.Tensor, masks: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """outputs: per branch (maps, coefficients, prototypes) (the train-mode output); targets (n, 6)
        [image, class, cx, cy, w, h] normalised; masks as in the class docstring.

        Returns (total, items): total = sum of the weighted, gained items x batch size; items (4,) detached.
        """
        return self.combine(self.branch_losses(outputs, targets, masks), outputs[0][1].shape[0])

    @torch.no_grad()
    def branch_items(self, outputs: Sequence[SegmentOutput], targets: torch.Tensor, masks: torch.Tensor
                     ) -> torch.Tensor:
        """Gained (box, seg, cls, dfl) of every branch, unweighted: (branches, 4)."""
        per_branch = self.branch_losses(outputs, targets, masks)
        return per_branch * self.gains.to(per_branch.device)

    def branch_losses(self, outputs: Sequence[SegmentOutput], targets: torch.Tensor, masks: torch.Tensor
                      ) -> torch.Tensor:
        """Ungained (box, seg, cls, dfl) per branch: (branches, 4), differentiable."""
        self.check_branches(outputs)
        shared = self.loss_targets(outputs[0][0], targets)
        targets = targets.to(shared.labels.device)
        check_masks(masks, targets, shared.batch_size, self.overlap)
        mask_rows = target_mask_rows(targets, shared.batch_size)
        per_branch = []
        for maps, coefficients, prototypes in outputs:
            (box, cls, dfl), assignment = self.detection_terms(maps, shared)
            dtype = torch.promote_types(prototypes.dtype, torch.float32)
            gt_masks = resized_masks(masks.to(prototypes.device), prototypes.shape[-2:])
            seg = mask_loss(coefficients.to(dtype), prototypes.to(dtype), assignment, gt_masks, shared.image_size,
                            self.overlap, mask_rows)
            per_branch.append(torch.stack((box, seg, cls, dfl)))
        return torch.stack(per_branch)
