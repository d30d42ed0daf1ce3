"""Sliced inference for large images and small objects (the SAHI idea): run the model on overlapping tiles at
full resolution plus on the whole image, and merge what they found.

Tiles: squares of `size` original pixels, neighbours sharing at least `overlap` x size pixels, spread evenly so
the last one ends on the image border (`yolov9.datasets.tiling.tile_origins`); each tile (and the whole image)
is letterboxed to the model's input size like any image. An image no larger than a tile runs once, whole.

Merge rule (`merge`): class-aware greedy NMS over all tiles' and the whole image's detections in original
pixels, where two boxes are duplicates when their intersection covers more than `match` (0.5) of the *smaller*
box (not IoU: the part of an object that a tile border cuts off is a small box inside the whole object's box,
with a low IoU but an intersection-over-smaller of 1). Detections touching a tile border inside the image are
possibly cut, so they rank after every uncut detection, then by confidence: an object keeps the box of a tile
(or of the whole image) that saw it whole, and a cut box survives only where nothing better covers it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from yolov9.datasets.tiling import tile_origins
from yolov9.errors import YOLOv9Error
from yolov9.ops.nms import greedy_nms

BORDER_TOLERANCE = 0.01  # a box within 1 % of the tile size (>= 2 px) of an inner tile border counts as cut


@dataclass(frozen=True)
class Slicing:
    """`size`: tile side in original pixels; `overlap`: fraction of it shared by neighbours; `full_image`: also run
    on the whole image (finds the objects larger than a tile); `match`: intersection-over-smaller of duplicates."""

    size: int
    overlap: float = 0.2
    full_image: bool = True
    match: float = 0.5

    def __post_init__(self):
        if self.size < 32:
            raise YOLOv9Error(f"slice size must be at least 32 px, got {self.size}")
        if not 0 <= self.overlap < 1:
            raise YOLOv9Error(f"slice overlap must lie in [0, 1), got {self.overlap}")

    def windows(self, shape: Sequence[int]) -> np.ndarray:
        """(k, 4) int64 x0, y0, x1, y1 crops of an image of shape (h, w): the whole image first (when
        `full_image`, or when one tile covers it), then the tiles row by row."""
        h, w = int(shape[0]), int(shape[1])
        whole = np.array([[0, 0, w, h]], np.int64)
        if h <= self.size and w <= self.size:
            return whole
        shared = round(self.size * self.overlap)
        ys = np.array(tile_origins(h, min(self.size, h), min(shared, h - 1)))
        xs = np.array(tile_origins(w, min(self.size, w), min(shared, w - 1)))
        y0, x0 = (a.ravel() for a in np.meshgrid(ys, xs, indexing="ij"))
        tiles = np.stack((x0, y0, np.minimum(x0 + self.size, w), np.minimum(y0 + self.size, h)), 1)
        return np.concatenate((whole, tiles)) if self.full_image else tiles

    def merge(self, detections: Sequence[np.ndarray], windows: np.ndarray, shape: Sequence[int], max_det: int
              ) -> np.ndarray:
        """Per window (k of them) its detections (n_i, 6+) [x1, y1, x2, y2, conf, cls, ...] in the window's own
        pixels -> the merged detections (m, 6+) in image pixels, best first, at most `max_det` (module docstring)."""
        counts = [len(d) for d in detections]
        if not sum(counts):
            return np.zeros((0, detections[0].shape[1] if len(detections) else 6), np.float32)
        rows = np.concatenate(detections).astype(np.float64)
        window = np.repeat(np.asarray(windows), counts, axis=0)
        rows[:, :4] += np.tile(window[:, :2], 2)
        cut = _touches_inner_border(rows[:, :4], window, shape, self.size)
        rank = np.lexsort((-rows[:, 4], cut))  # uncut first, then by confidence
        keep = rank[greedy_nms(rows[rank, :4], rows[rank, 5].astype(np.int64), self.match, smaller=True)]
        keep = keep[np.argsort(-rows[keep, 4], kind="stable")][:max_det]
        return rows[keep].astype(np.float32)


def _touches_inner_border(boxes: np.ndarray, windows: np.ndarray, shape: Sequence[int], size: int) -> np.ndarray:
    """(n,) True where a box (image pixels) lies within the tolerance of a side of its window that is not a side
    of the image: the tile's border may have cut the object."""
    h, w = int(shape[0]), int(shape[1])
    tolerance = max(2.0, BORDER_TOLERANCE * size)
    inner = np.stack((windows[:, 0] > 0, windows[:, 1] > 0, windows[:, 2] < w, windows[:, 3] < h), 1)
    near = np.abs(boxes - windows) <= tolerance
    return (inner & near).any(1)
