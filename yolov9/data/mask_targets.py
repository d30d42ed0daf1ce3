"""Instance-mask targets of one sample, made in the loader workers at the loss's resolution (canvas / ratio).

Rasterised like the official dataloader (`ops.masks.polygon_masks`: corners truncated, filled at full size, resized
INTER_LINEAR by the ratio); an object with several rings fills all of them before the resize (their union); an
object without a polygon (a box-only label) gets its filled box. Overlap mode orders the objects like the
official `polygons2masks_overlap` (`ops.masks.overlap_mask`).
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from yolov9.data.polygons import Polygons, fill_rings
from yolov9.ops.masks import polygon_masks

MAX_UINT8_INSTANCES = 255


def instance_masks(polygons: Polygons, boxes: np.ndarray, shape: Sequence[int], ratio: int) -> np.ndarray:
    """(n, h // ratio, w // ratio) uint8 0/1: the mask of each object of `polygons` (pixels of an image of
    `shape` (h, w)), or of its box (n, 4) xyxy when it has no ring."""
    h, w = int(shape[0]), int(shape[1])
    n = len(boxes)
    masks = np.zeros((n, h // ratio, w // ratio), np.uint8)
    counts = polygons.ring_counts
    single = np.flatnonzero(counts <= 1)
    if len(single):  # the official path: one polygon per object (a box-only row as its 4 corners)
        corners = boxes[single][:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 4, 2)
        rings = polygons.ring_list()
        outlines = [rings[polygons.rows[j]] if counts[j] else corners[k] for k, j in enumerate(single)]
        masks[single] = polygon_masks(outlines, (h, w), ratio)
    canvas = np.zeros((h, w), np.uint8)
    for j in np.flatnonzero(counts > 1):  # objects of several rings (COCO): rare
        canvas.fill(0)
        masks[j] = cv2.resize(fill_rings(canvas, polygons.select([j]).ring_list()), (w // ratio, h // ratio))
    return masks


def overlap_order(masks: np.ndarray) -> np.ndarray:
    """(n,) the official overlap order of masks (n, h, w): falling area, computed on uint64 areas whose negation
    wraps, so an empty mask comes first (see `ops.masks.overlap_mask`)."""
    return np.argsort(np.negative(masks.sum((1, 2), dtype=np.uint64)))


def overlap_map(masks: np.ndarray) -> np.ndarray:
    """Masks (n, h, w) already in overlap order -> one (h, w) map: value k + 1 where mask k is set (later masks
    drawn over earlier ones), 0 background; uint8 up to 255 objects, else int32."""
    labels = np.arange(1, len(masks) + 1, dtype=np.int32)[:, None, None]
    drawn = (masks * labels).max(0, initial=0) if len(masks) else np.zeros(masks.shape[1:], np.int32)
    return drawn.astype(np.uint8 if len(masks) <= MAX_UINT8_INSTANCES else np.int32)


def mask_targets(polygons: Polygons, boxes: np.ndarray, shape: Sequence[int], ratio: int, overlap: bool
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The targets of one sample and the order its label rows must take: overlap -> ((h', w') map, overlap order),
    else ((n, h', w') masks, identity)."""
    masks = instance_masks(polygons, boxes, shape, ratio)
    if not overlap:
        return masks, np.arange(len(masks))
    order = overlap_order(masks)
    return overlap_map(masks[order]), order
