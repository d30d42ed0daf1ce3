"""Cut a large image into overlapping square tiles and carry its boxes into each tile.

Clipping rule: a box cut by a tile border is kept, clipped to the tile, when at least `min_visible`
(default 40 %) of its area and at least `min_side` (default 4 px) of both its width and height lie inside the
tile; smaller remnants ("slivers") are dropped. With an overlap at least as large as the largest box, every box
lies whole inside at least one tile, so a dropped sliver never loses an object from the dataset.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, List

import numpy as np

MIN_VISIBLE = 0.4
MIN_SIDE = 4.0


@dataclass
class Tile:
    """One tile: its window (x0, y0, x1, y1) in the source image and its boxes (n, 4) x1y1x2y2 in tile pixels."""

    window: tuple
    boxes: np.ndarray
    source_index: np.ndarray


def tile_origins(length: int, tile: int, overlap: int) -> List[int]:
    """Evenly spaced tile starts covering [0, length) with neighbours sharing at least `overlap` pixels."""
    if tile <= overlap:
        raise ValueError(f"tile ({tile}) must be larger than overlap ({overlap})")
    if length <= tile:
        return [0]
    count = math.ceil((length - tile) / (tile - overlap)) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def clip_to_window(boxes: np.ndarray, window: tuple, min_visible: float = MIN_VISIBLE,
                   min_side: float = MIN_SIDE) -> tuple:
    """Boxes (n, 4) in image pixels -> (kept boxes (k, 4) in window pixels, kept indices (k,)) under the rule above."""
    x0, y0, x1, y1 = window
    clipped = np.stack([boxes[:, 0].clip(x0, x1), boxes[:, 1].clip(y0, y1),
                        boxes[:, 2].clip(x0, x1), boxes[:, 3].clip(y0, y1)], axis=1)
    width, height = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = (width >= min_side) & (height >= min_side) & (width * height >= min_visible * area)
    index = np.nonzero(keep)[0]
    return clipped[index] - np.array([x0, y0, x0, y0], dtype=clipped.dtype), index


def tile_image(width: int, height: int, boxes: np.ndarray, tile: int, overlap: int,
               min_visible: float = MIN_VISIBLE, min_side: float = MIN_SIDE) -> Iterator[Tile]:
    """Yield the tiles of a width x height image row by row; an image no larger than `tile` is one tile."""
    for y in tile_origins(height, tile, overlap):
        for x in tile_origins(width, tile, overlap):
            window = (x, y, min(x + tile, width), min(y + tile, height))
            kept, index = clip_to_window(boxes, window, min_visible, min_side)
            yield Tile(window, kept, index)
