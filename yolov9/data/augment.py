"""The YOLOv9 training augmentations: mosaic-4, copy-paste, random perspective, mixup.

All are functions of a `Sample` (see transforms.py) and a `numpy.random.Generator`; boxes are xyxy pixels.
Polygons follow every geometric step and are cut to the canvas (`Polygons.clip`); the box of an object with a
polygon is then the box of its visible polygon, so boxes and masks stay consistent.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import cv2
import numpy as np

from yolov9.data.polygons import Polygons, fill_rings
from yolov9.data.transforms import Sample
from yolov9.ops.boxes import clip_boxes
from yolov9.ops.letterbox import PAD_VALUE


def box_candidates(before: np.ndarray, after: np.ndarray, wh_thr: float = 2, ar_thr: float = 100,
                   area_thr: float = 0.1, eps: float = 1e-16) -> np.ndarray:
    """Boxes (n, 4) kept after a warp: > wh_thr px wide and high, > area_thr of their scaled area, aspect < ar_thr."""
    w1, h1 = before[:, 2] - before[:, 0], before[:, 3] - before[:, 1]
    w2, h2 = after[:, 2] - after[:, 0], after[:, 3] - after[:, 1]
    aspect = np.maximum(w2 / (h2 + eps), h2 / (w2 + eps))
    return (w2 > wh_thr) & (h2 > wh_thr) & (w2 * h2 / (w1 * h1 + eps) > area_thr) & (aspect < ar_thr)


def affine_matrix(rng: np.random.Generator, in_shape: tuple[int, int], out_shape: tuple[int, int], degrees: float,
                  translate: float, scale: float, shear: float, perspective: float) -> tuple[np.ndarray, float]:
    """3x3 warp: centre the input, perspective, rotate+scale, shear, translate to the output centre (+- jitter).

    Returns (matrix, scale factor).
    """
    u = rng.uniform(-1, 1, 7)
    center = np.eye(3)
    center[0, 2], center[1, 2] = -in_shape[1] / 2, -in_shape[0] / 2
    persp = np.eye(3)
    persp[2, 0], persp[2, 1] = u[0] * perspective, u[1] * perspective
    angle, s = u[2] * degrees, 1 + u[3] * scale
    rotate = np.eye(3)
    rotate[:2] = cv2.getRotationMatrix2D(angle=angle, center=(0, 0), scale=s)
    skew = np.eye(3)
    skew[0, 1], skew[1, 0] = math.tan(u[4] * shear * math.pi / 180), math.tan(u[5] * shear * math.pi / 180)
    move = np.eye(3)
    jitter = rng.uniform(-translate, translate, 2)
    move[0, 2], move[1, 2] = (0.5 + jitter[0]) * out_shape[1], (0.5 + jitter[1]) * out_shape[0]
    return move @ skew @ rotate @ persp @ center, s


def random_perspective(sample: Sample, rng: np.random.Generator, out_shape: tuple[int, int], degrees: float = 0.0,
                       translate: float = 0.1, scale: float = 0.9, shear: float = 0.0,
                       perspective: float = 0.0) -> Sample:
    """Warp the image to `out_shape` (h, w) and its boxes; boxes too small or distorted afterwards are dropped.

    Polygons are warped and cut to the output; their objects' boxes are the boxes of the visible polygons
    (tighter than warped corners).
    """
    matrix, s = affine_matrix(rng, sample.image.shape[:2], out_shape, degrees, translate, scale, shear, perspective)
    size = (out_shape[1], out_shape[0])
    fill = (PAD_VALUE,) * 3
    if perspective:
        image = cv2.warpPerspective(sample.image, matrix, dsize=size, borderValue=fill)
    else:
        image = cv2.warpAffine(sample.image, matrix[:2], dsize=size, borderValue=fill)
    n = len(sample.boxes)
    if not n:
        return Sample(image, sample.boxes, sample.classes)
    corners = sample.boxes[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(n * 4, 2)
    warped = _warp_points(corners, matrix, perspective).reshape(n, 4, 2)
    boxes = clip_boxes(np.concatenate((warped.min(1), warped.max(1)), 1), out_shape)
    had_polygon = sample.polygons.has_polygon
    polygons = sample.polygons.map_points(lambda p: _warp_points(p, matrix, perspective)).clip(0, 0, *size)
    boxes = np.where(had_polygon[:, None], polygons.boxes(np.zeros_like(boxes)), boxes)
    keep = box_candidates(sample.boxes * s, boxes, area_thr=0.01 if had_polygon.any() else 0.1)
    return Sample(image, boxes, sample.classes, polygons).select(keep)


def _warp_points(points: np.ndarray, matrix: np.ndarray, perspective: float) -> np.ndarray:
    """Points (n, 2) in continuous pixel coordinates through the warp that cv2.warpAffine / warpPerspective apply
    to the image: OpenCV maps pixel centres (index + 0.5), so the matrix acts on coordinates shifted by half a pixel
    (without the shift, points would drift by up to (1 - scale) / 2 px from their pixels)."""
    centres = points - 0.5
    xy = centres @ matrix[:2, :2].T + matrix[:2, 2]
    if perspective:
        w = centres @ matrix[2, :2] + matrix[2, 2]
        xy = xy / w[:, None]
    return (xy + 0.5).astype(np.float32)


def mosaic_layout(k: int, h: int, w: int, xc: int, yc: int, size: int) -> tuple[int, int, int, int, int, int]:
    """Where tile k (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) of shape (h, w) goes on the
    2s x 2s canvas around centre (xc, yc): canvas rectangle x1, y1, x2, y2 and the tile's crop origin tx1, ty1."""
    x1, x2 = (max(xc - w, 0), xc) if k in (0, 2) else (xc, min(xc + w, 2 * size))
    y1, y2 = (max(yc - h, 0), yc) if k in (0, 1) else (yc, min(yc + h, 2 * size))
    tx1 = w - (x2 - x1) if k in (0, 2) else 0
    ty1 = h - (y2 - y1) if k in (0, 1) else 0
    return x1, y1, x2, y2, tx1, ty1


def mosaic4(load: Callable[[int], Sample], indices: Sequence[int], size: int, rng: np.random.Generator) -> Sample:
    """Tile 4 samples (long side `size`) around a random centre on a 2s x 2s canvas filled with 114."""
    canvas = np.full((2 * size, 2 * size, 3), PAD_VALUE, np.uint8)
    xc, yc = (int(v) for v in rng.uniform(size / 2, 3 * size / 2, 2))
    boxes, classes, polygons = [], [], []
    for k, index in enumerate(indices):
        tile = load(index)
        x1, y1, x2, y2, tx1, ty1 = mosaic_layout(k, *tile.image.shape[:2], xc, yc, size)
        canvas[y1:y2, x1:x2] = tile.image[ty1:ty1 + (y2 - y1), tx1:tx1 + (x2 - x1)]
        shift = np.array([x1 - tx1, y1 - ty1], np.float32)
        boxes.append(tile.boxes + np.tile(shift, 2))
        classes.append(tile.classes)
        polygons.append(tile.polygons.map_points(lambda p: p + shift))
    boxes = clip_boxes(np.concatenate(boxes), (2 * size, 2 * size))
    return Sample(canvas, boxes, np.concatenate(classes), Polygons.concat(polygons).clip(0, 0, 2 * size, 2 * size))


def box_ioa(boxes1: np.ndarray, boxes2: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Intersection over the area of boxes2: (n, 4) x (m, 4) -> (n, m)."""
    lt = np.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = np.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    inter = (rb - lt).clip(0).prod(2)
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    return inter / (area2[None] + eps)


def copy_paste(sample: Sample, rng: np.random.Generator, p: float) -> Sample:
    """Paste left-right mirrored copies of round(p * n) polygon objects where they overlap others by IoA < 0.3."""
    with_polygon = sample.polygons.has_polygon
    n = int(with_polygon.sum())
    if not p or not n:
        return sample
    w = sample.image.shape[1]
    chosen = rng.choice(np.flatnonzero(with_polygon), size=round(p * n), replace=False)
    mirrored = sample.boxes[chosen][:, [2, 1, 0, 3]] * (-1, 1, -1, 1) + (w, 0, w, 0)
    free = (box_ioa(mirrored, sample.boxes) < 0.30).all(1) if len(chosen) else np.zeros(0, bool)
    chosen, mirrored = chosen[free], mirrored[free]
    if not len(chosen):
        return sample
    pasted = sample.polygons.select(chosen).map_points(lambda q: q * (-1, 1) + (w, 0))
    mask = fill_rings(np.zeros(sample.image.shape[:2], np.uint8), pasted.ring_list(), centres=True)
    image = cv2.copyTo(cv2.flip(sample.image, 1), mask, sample.image.copy())  # mirrored pixels inside the mask
    return Sample(image, np.concatenate((sample.boxes, mirrored.astype(np.float32))),
                  np.concatenate((sample.classes, sample.classes[chosen])),
                  Polygons.concat([sample.polygons, pasted]))


def mixup(sample: Sample, other: Sample, rng: np.random.Generator) -> Sample:
    """Blend two same-size samples with ratio ~ Beta(32, 32); labels of both are kept."""
    r = float(rng.beta(32.0, 32.0))
    image = cv2.addWeighted(sample.image, r, other.image, 1 - r, 0)
    return Sample(image, np.concatenate((sample.boxes, other.boxes)), np.concatenate((sample.classes, other.classes)),
                  Polygons.concat([sample.polygons, other.polygons]))


def scaled_mosaic4(load: Callable[[int], Sample], indices: Sequence[int], size: int, rng: np.random.Generator,
                   translate: float, scale: float) -> Sample:
    """`mosaic4` followed by a scale + translate `random_perspective` (no rotation, shear or perspective), in one
    step: each tile's visible part is resized straight into the s x s output, without the 2s x 2s canvas.

    Same random draws as the two-step path. Each tile's boxes and polygons (cut to the tile's visible part) follow
    that tile's own resize mapping, so they stay exactly on their pixels; tiles may sit up to half a pixel away from
    the ideal warp.
    """
    xc, yc = (int(v) for v in rng.uniform(size / 2, 3 * size / 2, 2))
    matrix, s = affine_matrix(rng, (2 * size, 2 * size), (size, size), 0.0, translate, scale, 0.0, 0.0)
    gain, shift = matrix[0, 0], matrix[:2, 2]
    out = np.full((size, size, 3), PAD_VALUE, np.uint8)
    boxes, before, classes, polygons, had_polygon = [], [], [], [], []
    for k, index in enumerate(indices):
        tile = load(index)
        x1, y1, x2, y2, tx1, ty1 = mosaic_layout(k, *tile.image.shape[:2], xc, yc, size)
        ox1, ox2 = np.clip(np.round(np.array([x1, x2]) * gain + shift[0]), 0, size).astype(int)
        oy1, oy2 = np.clip(np.round(np.array([y1, y2]) * gain + shift[1]), 0, size).astype(int)
        # tile pixels that land in [ox1, ox2) x [oy1, oy2)
        a = np.round((np.array([ox1, ox2]) - shift[0]) / gain - x1 + tx1).astype(int)
        b = np.round((np.array([oy1, oy2]) - shift[1]) / gain - y1 + ty1).astype(int)
        a = np.clip(a, tx1, tx1 + x2 - x1)
        b = np.clip(b, ty1, ty1 + y2 - y1)
        if ox2 <= ox1 or oy2 <= oy1 or a[1] <= a[0] or b[1] <= b[0]:
            continue
        crop = tile.image[b[0]:b[1], a[0]:a[1]]
        out[oy1:oy2, ox1:ox2] = cv2.resize(crop, (ox2 - ox1, oy2 - oy1), interpolation=cv2.INTER_LINEAR)
        # cv2.resize maps crop edge coordinate u to output (u - crop_origin) * (out_len / crop_len) + out_origin
        fx, fy = (ox2 - ox1) / (a[1] - a[0]), (oy2 - oy1) / (b[1] - b[0])
        tile_gain = np.array([fx, fy], np.float32)
        tile_shift = np.array([ox1 - a[0] * fx, oy1 - b[0] * fy], np.float32)
        visible = clip_boxes(tile.boxes - (tx1, ty1, tx1, ty1), (y2 - y1, x2 - x1)) + (tx1, ty1, tx1, ty1)
        boxes.append(visible * np.tile(tile_gain, 2) + np.tile(tile_shift, 2))
        before.append((visible[:, 2:] - visible[:, :2]) * s)
        classes.append(tile.classes)
        shown = tile.polygons.clip(tx1, ty1, tx1 + x2 - x1, ty1 + y2 - y1)
        polygons.append(shown.map_points(lambda p: p * tile_gain + tile_shift))
        had_polygon.append(tile.polygons.has_polygon)
    if not boxes:
        return Sample(out, np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
    polygons = Polygons.concat(polygons).clip(0, 0, size, size)
    boxes = clip_boxes(np.concatenate(boxes), (size, size))
    boxes = np.where(np.concatenate(had_polygon)[:, None], polygons.boxes(np.zeros_like(boxes)), boxes)
    wh = np.concatenate(before)
    keep = box_candidates(np.concatenate((np.zeros_like(wh), wh), 1), boxes)
    return Sample(out, boxes, np.concatenate(classes), polygons).select(keep)
