"""The instance-mask term of the segmentation loss, vectorised over the foreground anchors of the whole batch.

For every foreground anchor: logits = its coefficients . its image's prototypes, BCE against the ground-truth mask
of the target it is assigned, zeroed outside that target's box, averaged over the whole prototype map and divided
by the box's normalised area (small objects weigh as much as large ones). Per image the mean over its foreground
anchors; the batch term is the sum over images / batch size (the official loss: sum over images x gain / B).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from yolov9.errors import YOLOv9Error
from yolov9.loss.assigner import Assignment
from yolov9.ops.masks import crop_mask


def resized_masks(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Ground-truth masks (K, H, W) as float at the prototype size (nearest, as officially, when they differ)."""
    masks = masks.float()
    if tuple(masks.shape[-2:]) != tuple(size):
        masks = F.interpolate(masks[None], size, mode="nearest")[0]
    return masks


def check_masks(masks: torch.Tensor, targets: torch.Tensor, batch_size: int, overlap: bool) -> None:
    """Overlap masks are one index map per image (B, H, W); otherwise one mask per target row (n, H, W)."""
    expected, what = (batch_size, "images") if overlap else (len(targets), "targets")
    if masks.ndim != 3 or masks.shape[0] != expected:
        layout = "(B, H, W) instance-index maps" if overlap else "(n, H, W), one per target row"
        raise YOLOv9Error(f"{'overlap' if overlap else 'per-instance'} masks must be {layout}: expected {expected} "
                          f"for {expected} {what}, got shape {tuple(masks.shape)}")


def target_mask_rows(targets: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows sorted by image (stable), first sorted position of each image): slot j of image i is row
    order[start[i] + j], the order in which `pad_targets` fills the slots."""
    image_index = targets[:, 0].long()
    counts = torch.bincount(image_index, minlength=batch_size)
    return torch.argsort(image_index, stable=True), counts.cumsum(0) - counts


def foreground_mask_logits(coefficients: torch.Tensor, prototypes: torch.Tensor, image: torch.Tensor,
                           anchor: torch.Tensor) -> torch.Tensor:
    """coefficients (B, nm, A), prototypes (B, nm, h, w), foreground (image, anchor) (N,) sorted by image
    -> mask logits (N, h, w). One batched matmul over images, coefficient rows padded per image."""
    batch, nm, h, w = prototypes.shape
    counts = torch.bincount(image, minlength=batch)
    slot = torch.arange(len(image), device=image.device) - (counts.cumsum(0) - counts)[image]
    padded = coefficients.new_zeros(batch, int(counts.max()), nm)
    padded[image, slot] = coefficients[image, :, anchor]
    return torch.bmm(padded, prototypes.flatten(2))[image, slot].view(-1, h, w)


def mask_loss(coefficients: torch.Tensor, prototypes: torch.Tensor, assignment: Assignment, masks: torch.Tensor,
              image_size: tuple[float, float], overlap: bool, mask_rows: tuple[torch.Tensor, torch.Tensor]
              ) -> torch.Tensor:
    """The ungained mask term of one branch (a scalar).

    masks: float at the prototype size, overlap (B, h, w) with value k+1 on instance k of the image, else
    (n, h, w) one per target row; mask_rows: `target_mask_rows` of the targets (used without overlap).
    """
    batch, _, h, w = prototypes.shape
    image, anchor = assignment.fg_mask.nonzero(as_tuple=True)
    if len(image) == 0:
        return (coefficients.sum() + prototypes.sum()) * 0.0  # keeps the graph connected
    gt_index = assignment.gt_index[image, anchor]
    if overlap:
        target = (masks[image] == (gt_index + 1).view(-1, 1, 1)).to(prototypes.dtype)
    else:
        order, start = mask_rows
        target = masks[order[start[image] + gt_index]]
    logits = foreground_mask_logits(coefficients, prototypes, image, anchor)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    image_h, image_w = image_size
    boxes = assignment.boxes[image, anchor] / _box_scale(image_w, image_h, prototypes)  # xyxy normalised
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    per_anchor = crop_mask(bce, boxes * _box_scale(w, h, prototypes)).mean((1, 2)) / area
    per_image = per_anchor.new_zeros(batch).index_add_(0, image, per_anchor)
    return (per_image / torch.bincount(image, minlength=batch).clamp(min=1)).sum() / batch


def _box_scale(width: float, height: float, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor([width, height, width, height], device=like.device, dtype=like.dtype)
