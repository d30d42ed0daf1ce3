"""Instance-mask operations (segmentation): vectorised over masks, no loop over pixels.

Data side: polygons -> mask targets, equal bit for bit to the official dataloader (pixel coordinates truncated to
int32, `cv2.fillPoly`, then `cv2.resize` INTER_LINEAR by the downsample ratio; OpenCV's resize takes different
rounding paths for different channel counts, so each mask is resized on its own, as the official code does).
Prediction side: mask coefficients x prototypes -> binary masks at prototype, input or original resolution.
"""
from __future__ import annotations

from typing import Sequence, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from yolov9.ops.letterbox import Letterbox

RESIZE_CHANNELS = 128  # OpenCV 5 resizes at most 128 channels at once (CV_CN_MAX)


def box_axes(boxes: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Which rows and columns of an (height, width) map lie in each box: boxes (N, 4) xyxy in map pixels ->
    (rows (N, height), columns (N, width)) bool. Pixel (x, y) is in the box when x1 <= x < x2 and y1 <= y < y2
    (the official crop rule); the box is their outer product."""
    x1, y1, x2, y2 = boxes[:, :, None].unbind(1)  # (N, 1) each
    cols = torch.arange(width, device=boxes.device, dtype=boxes.dtype)
    rows = torch.arange(height, device=boxes.device, dtype=boxes.dtype)
    return (rows >= y1) & (rows < y2), (cols >= x1) & (cols < x2)


def crop_mask(masks: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Zero every mask outside its box: masks (N, H, W), boxes (N, 4) xyxy in mask pixels -> (N, H, W)."""
    rows, cols = box_axes(boxes, *masks.shape[1:])
    return masks * (rows[:, :, None] & cols[:, None, :])


def polygon_masks(polygons: Sequence[np.ndarray], shape: Sequence[int], downsample: int = 1) -> np.ndarray:
    """Polygons (M_i, 2) xy in pixels of an image of `shape` (h, w) -> uint8 0/1 masks (N, h // r, w // r).

    Each polygon is filled at full size (corners truncated to int32), then the mask is resized (INTER_LINEAR) by
    the downsample ratio r: the official `polygons2masks` (the targets of `--no-overlap` training).
    """
    h, w = int(shape[0]), int(shape[1])
    size = (w // downsample, h // downsample)
    canvas = np.zeros((h, w), dtype=np.uint8)
    masks = np.zeros((len(polygons), size[1], size[0]), dtype=np.uint8)
    for mask, polygon in zip(masks, polygons):  # one fillPoly and one resize per mask
        canvas.fill(0)
        corners = np.asarray(polygon).reshape(1, -1, 2).astype(np.int32)
        if corners.shape[1]:
            cv2.fillPoly(canvas, corners, color=1)
        mask[:] = cv2.resize(canvas, size)
    return masks


def overlap_mask(polygons: Sequence[np.ndarray], shape: Sequence[int], downsample: int = 1
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Polygons -> one (h // r, w // r) map and the instance order: pixel value k + 1 marks instance `order[k]`.

    The official `polygons2masks_overlap` (the targets of default training): instances sorted by falling mask area,
    later (smaller) ones drawn over earlier ones, 0 background; labels must be reordered with `order`. Its areas
    are unsigned, so negating them for the sort wraps: an instance whose mask vanished (area 0) comes FIRST, and
    ties keep numpy's default (unstable) order. The map is uint8 up to 255 instances, else int32. (The official
    code adds in uint8, which wraps where an instance after the 128th overlaps a late one; this draws "last wins".)
    """
    masks = polygon_masks(polygons, shape, downsample)
    areas = masks.sum((1, 2), dtype=np.uint64)
    order = np.argsort(np.negative(areas))  # uint64: -0 == 0 sorts before every wrapped -area
    labels = np.arange(1, len(masks) + 1, dtype=np.int32)[:, None, None]
    drawn = (masks[order] * labels).max(0, initial=0)
    return drawn.astype(np.uint8 if len(masks) <= 255 else np.int32), order


def masks_to_polygons(masks: Union[torch.Tensor, np.ndarray], strategy: str = "largest") -> list[np.ndarray]:
    """(N, H, W) binary masks -> N float32 (M, 2) xy outlines (OpenCV external contours, simple chain).

    `largest` keeps the contour with the most points (the first on ties), `concat` joins all contours; an empty
    mask gives (0, 2). The official `masks2segments`, for YOLO-seg label files.
    """
    if strategy not in ("largest", "concat"):
        raise ValueError(f"strategy must be 'largest' or 'concat', not {strategy!r}")
    array = masks.detach().cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
    outlines = []
    for mask in (array != 0).astype(np.uint8):
        contours = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0]
        if not contours:
            outlines.append(np.zeros((0, 2), dtype=np.float32))
        elif strategy == "concat":
            outlines.append(np.concatenate([c.reshape(-1, 2) for c in contours]).astype(np.float32))
        else:
            outlines.append(contours[int(np.argmax([len(c) for c in contours]))].reshape(-1, 2).astype(np.float32))
    return outlines


def mask_probabilities(protos: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
    """Prototypes (C, h, w) and coefficients (N, C) -> sigmoid(coefficients @ prototypes): (N, h, w) float."""
    c, h, w = protos.shape
    return (coefficients.float() @ protos.float().reshape(c, -1)).sigmoid().reshape(-1, h, w)


def process_mask(protos: torch.Tensor, coefficients: torch.Tensor, boxes: torch.Tensor, shape: Sequence[int],
                 upsample: bool = False) -> torch.Tensor:
    """Masks of N detections, cropped at prototype resolution: (N, h, w) bool, or (N, H, W) with `upsample`.

    protos (C, h, w); coefficients (N, C); boxes (N, 4) xyxy in pixels of the network input of `shape` (H, W).
    The box is scaled to the prototypes and crops the probabilities; `upsample` resizes them bilinearly
    (align_corners=False) to the input; a pixel is set where the probability is > 0.5 (the official rule).
    """
    masks = mask_probabilities(protos, coefficients)
    h, w = masks.shape[1:]
    scale = boxes.new_tensor([w / shape[1], h / shape[0], w / shape[1], h / shape[0]])
    masks = crop_mask(masks, boxes.float() * scale)
    if upsample:
        masks = _resize(masks, shape)
    return masks > 0.5


def process_mask_upsample(protos: torch.Tensor, coefficients: torch.Tensor, boxes: torch.Tensor,
                          shape: Sequence[int]) -> torch.Tensor:
    """Like `process_mask(upsample=True)` but the probabilities are upsampled to `shape` (H, W) first and
    cropped to the boxes there (the official save-json path): (N, H, W) bool."""
    masks = _resize(mask_probabilities(protos, coefficients), shape)
    return crop_mask(masks, boxes.float()) > 0.5


def masks_to_original(masks: torch.Tensor, letterbox: Letterbox) -> torch.Tensor:
    """(N, H, W) binary masks on the letterbox canvas -> (N, h, w) bool on the original image of `letterbox.shape`.

    The padding is dropped and the rest resized to the original size with OpenCV INTER_LINEAR on 0/1 bytes (the
    official `scale_image`), several masks per call as the channels of one image.
    """
    if tuple(masks.shape[1:]) != tuple(letterbox.canvas):
        raise ValueError(f"masks of {tuple(masks.shape[1:])} pixels, but the letterbox canvas is {letterbox.canvas}")
    (left, top), (h, w) = letterbox.pad, letterbox.resized
    inside = masks[:, top:top + h, left:left + w].to(torch.uint8).cpu().numpy()
    size = (letterbox.shape[1], letterbox.shape[0])
    original = np.zeros((len(inside), size[1], size[0]), dtype=bool)
    for first in range(0, len(inside), RESIZE_CHANNELS):
        channels = np.ascontiguousarray(inside[first:first + RESIZE_CHANNELS].transpose(1, 2, 0))
        resized = cv2.resize(channels, size, interpolation=cv2.INTER_LINEAR)
        original[first:first + RESIZE_CHANNELS] = resized.reshape(size[1], size[0], -1).transpose(2, 0, 1) > 0
    return torch.from_numpy(original).to(masks.device)


def _resize(masks: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """(N, h, w) float -> (N, H, W) bilinear, align_corners=False."""
    size = (int(shape[0]), int(shape[1]))
    if not len(masks):
        return masks.new_zeros((0, *size))
    return F.interpolate(masks[None], size=size, mode="bilinear", align_corners=False)[0]
