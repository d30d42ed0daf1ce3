"""The instance-mask term of the segmentation loss, vectorised over the foreground anchors of each image.

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
from yolov9.ops.masks import box_axes


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


def mask_loss(coefficients: torch.Tensor, prototypes: torch.Tensor, assignment: Assignment, masks: torch.Tensor,
              image_size: tuple[float, float], overlap: bool, mask_rows: tuple[torch.Tensor, torch.Tensor]
              ) -> torch.Tensor:
    """The ungained mask term of one branch (a scalar).

    coefficients (B, nm, A), prototypes (B, nm, h, w); masks: float at the prototype size, overlap (B, h, w) with
    value k+1 on instance k of the image, else (n, h, w) one per target row; mask_rows: `target_mask_rows` of the
    targets (used without overlap). One matmul per image over all of its foreground anchors: the overlap targets
    are compared with the image's index map by broadcasting, never gathered per anchor (the loss of a gelan-c-seg
    head at 640, batch 8, went from 2.78x to 1.11x Ultralytics' time with this form, and to 0.88x with the box
    sum of `_mean_inside`: benchmarks/seg_evidence.py).
    """
    batch, nm, h, w = prototypes.shape
    fg_mask = assignment.fg_mask
    if not fg_mask.any():
        return (coefficients.sum() + prototypes.sum()) * 0.0  # keeps the graph connected
    image_h, image_w = image_size
    to_normalised, to_mask = _box_scale(image_w, image_h, prototypes), _box_scale(w, h, prototypes)
    order, start = mask_rows
    total = prototypes.new_zeros(())
    # unbind: one backward for all images (indexing image i would zero-fill a (B, nm, h, w) gradient per image)
    for i, (image_coefficients, image_prototypes) in enumerate(zip(coefficients.unbind(0), prototypes.unbind(0))):
        anchors = fg_mask[i].nonzero().squeeze(1)
        if len(anchors) == 0:
            continue
        gt_index = assignment.gt_index[i, anchors]
        if overlap:
            target = (masks[i] == (gt_index + 1).view(-1, 1, 1)).to(prototypes.dtype)
        else:
            target = masks[order[start[i] + gt_index]]
        logits = (image_coefficients[:, anchors].T @ image_prototypes.reshape(nm, h * w)).view(-1, h, w)
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        boxes = assignment.boxes[i, anchors] / to_normalised  # xyxy normalised
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        total = total + (_mean_inside(bce, boxes * to_mask) / area).mean()
    return total / batch


def _mean_inside(values: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Per map the sum of values (N, H, W) inside its box (N, 4) xyxy in map pixels over H x W: (N,). The box is
    separable (rows x columns), so the sum is a batched matrix-vector product and the cropped (N, H, W) maps are
    never formed (what `crop_mask(values, boxes).mean((1, 2))` computes, in fewer passes over the maps)."""
    _, h, w = values.shape
    rows, cols = (axis.to(values.dtype) for axis in box_axes(boxes, h, w))
    return ((values @ cols.unsqueeze(2)).squeeze(2) * rows).sum(1) / (h * w)


def _box_scale(width: float, height: float, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor([width, height, width, height], device=like.device, dtype=like.dtype)
