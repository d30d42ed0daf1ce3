"""Binary instance masks -> the one polygon per instance that a YOLO-seg label line can hold.

A pixel (i, j) covers [j, j + 1) x [i, i + 1). The outline runs a quarter pixel inside the mask's pixel edges: the
contours of the mask upsampled 2x (nearest), through the centres of its boundary sub-pixels. Outer contours
(separate strokes) and hole contours (the loops of 0, 6, 8, 9) are all joined into one polygon by zero-width
bridges (`yolov9.data.polygons.merge_rings`), the largest outer contour first. Filled with the even-odd rule -
what both rasterisers of the pipeline do with one polygon: cv2.fillPoly (training targets, corners truncated to
int) and pycocotools (evaluation ground truth) - the holes stay open and every stroke is filled, so the label
rasterises back onto the mask's pixels under either (tested). The polygon's box lies within 1/4 px of the mask's.
"""
from __future__ import annotations

import cv2
import numpy as np

from yolov9.data.polygons import merge_rings

UPSAMPLE = 2


def mask_outline(mask: np.ndarray, origin: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """A binary mask (h, w) -> one polygon (m, 2) float64 xy in pixels, shifted by `origin` (x, y); (0, 2) if empty."""
    fine = np.repeat(np.repeat(np.asarray(mask) != 0, UPSAMPLE, 0), UPSAMPLE, 1).astype(np.uint8)
    contours = cv2.findContours(fine, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)[0]
    if not contours:
        return np.zeros((0, 2), np.float64)
    contours = sorted(contours, key=cv2.contourArea, reverse=True)  # the largest outer contour first
    rings = [(c.reshape(-1, 2).astype(np.float64) + 0.5) / UPSAMPLE for c in contours]
    return merge_rings(rings).astype(np.float64) + np.asarray(origin, np.float64)


def instance_outlines(instances: np.ndarray, ids: np.ndarray) -> list[np.ndarray]:
    """A label image (h, w) (0 background, k = instance k) -> the outline (m, 2) of each id in `ids`, each traced
    on its own bounding-box crop."""
    ys, xs = np.nonzero(np.isin(instances, ids))
    owner = instances[ys, xs]
    outlines = []
    for k in ids:
        mine = owner == k
        x0, y0 = xs[mine].min(), ys[mine].min()
        crop = instances[y0:ys[mine].max() + 1, x0:xs[mine].max() + 1] == k
        outlines.append(mask_outline(crop, (x0, y0)))
    return outlines
