"""Ground-truth rows of a batch -> padded per-image tensors, without a Python loop over images."""
from __future__ import annotations

import torch

from yolov9.errors import YOLOv9Error
from yolov9.ops.boxes import xywh2xyxy


def pad_targets(targets: torch.Tensor, batch_size: int, image_size: tuple[int, int]
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scatter (n, 6) rows [image_index, class, cx, cy, w, h] (normalised) into per-image slots.

    image_size is (height, width) in pixels. Rows keep their order within an image. Returns
    labels (B, m, 1), boxes (B, m, 4) xyxy pixels and mask (B, m, 1) bool (False on padding), m = max boxes/image.
    """
    device, dtype = targets.device, targets.dtype if targets.is_floating_point() else torch.float32
    if targets.ndim != 2 or targets.shape[-1] != 6:
        raise YOLOv9Error(f"targets must have shape (n, 6) [image_index, class, cx, cy, w, h], got {tuple(targets.shape)}")
    image_index = targets[:, 0].long()
    if len(image_index) and (int(image_index.min()) < 0 or int(image_index.max()) >= batch_size):
        raise YOLOv9Error(f"targets hold image indices {int(image_index.min())}..{int(image_index.max())} "
                          f"for a batch of {batch_size} images")
    counts = torch.bincount(image_index, minlength=batch_size)
    max_boxes = int(counts.max()) if len(image_index) else 0
    order = torch.argsort(image_index, stable=True)
    sorted_index = image_index[order]
    slot = torch.arange(len(order), device=device) - (counts.cumsum(0) - counts)[sorted_index]

    padded = torch.zeros(batch_size, max_boxes, 5, device=device, dtype=dtype)
    padded[sorted_index, slot] = targets[order, 1:].to(dtype)
    mask = torch.zeros(batch_size, max_boxes, 1, dtype=torch.bool, device=device)
    mask[sorted_index, slot] = True
    height, width = image_size
    scale = torch.tensor([width, height, width, height], device=device, dtype=dtype)
    return padded[..., :1], xywh2xyxy(padded[..., 1:] * scale), mask
