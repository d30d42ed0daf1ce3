"""Annotate images with boxes, class names and confidences, and instance masks (OpenCV only, no font files)."""
from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

# Distinct, saturated colours (RGB hex) that stay readable with white or black label text.
PALETTE_HEX = ("FF3838", "FF9D97", "FF701F", "FFB21D", "CFD231", "48F90A", "92CC17", "3DDB86", "1A9334", "00D4BB",
               "2C99A8", "00C2FF", "344593", "6473FF", "0018EC", "8438FF", "520085", "CB38FF", "FF95C8", "FF37C7")
PALETTE_BGR = tuple((int(h[4:6], 16), int(h[2:4], 16), int(h[0:2], 16)) for h in PALETTE_HEX)


def class_colour(class_id: int) -> tuple[int, int, int]:
    """BGR colour of a class (cycled palette)."""
    return PALETTE_BGR[int(class_id) % len(PALETTE_BGR)]


def _text_colour(background: tuple[int, int, int]) -> tuple[int, int, int]:
    b, g, r = background
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 150 else (255, 255, 255)


def _line_width(shape: Sequence[int], line_width: int) -> int:
    """`line_width`, or by default about 0.3 % of the image's mean side (at least 2 px)."""
    return line_width or max(round(sum(shape[:2]) / 2 * 0.003), 2)


def draw_masks(image: np.ndarray, masks: np.ndarray, classes: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """A copy of `image` (H, W, 3) BGR with binary masks (n, H, W) blended in their class colours; where masks
    overlap, the first one (the best-scoring detection) shows."""
    out = image.copy()
    masks = np.asarray(masks, dtype=bool)
    if not len(masks):
        return out
    covered = masks.any(0)
    owner = masks.argmax(0)[covered]  # the first mask on each covered pixel
    colours = np.array([class_colour(int(c)) for c in np.asarray(classes)], dtype=np.float32)
    out[covered] = ((1 - alpha) * out[covered] + alpha * colours[owner]).round().astype(np.uint8)
    return out


def draw_detections(image: np.ndarray, boxes: np.ndarray, scores: Optional[np.ndarray], classes: np.ndarray,
                    names: Sequence[str], line_width: int = 0, ids: Optional[np.ndarray] = None) -> np.ndarray:
    """A copy of `image` (H, W, 3) BGR with boxes (n, 4) xyxy pixels labelled "name 0.87" (just "name" when
    `scores` is None); with track `ids` (n,) labelled "id:7 name 0.87" and coloured by id instead of class."""
    out = np.ascontiguousarray(image.copy())
    lw = _line_width(out.shape, line_width)
    font_scale = lw / 3
    thickness = max(lw - 1, 1)
    scores = [None] * len(boxes) if scores is None else np.asarray(scores)
    tracks = [None] * len(boxes) if ids is None else np.asarray(ids)
    for box, score, cls, track in zip(np.asarray(boxes), scores, np.asarray(classes), tracks):
        colour = class_colour(int(cls) if track is None else int(track))
        p1, p2 = (int(box[0]), int(box[1])), (int(box[2]), int(box[3]))
        cv2.rectangle(out, p1, p2, colour, lw, cv2.LINE_AA)
        name = names[int(cls)] if 0 <= int(cls) < len(names) else str(int(cls))
        label = name if score is None else f"{name} {score:.2f}"
        label = label if track is None else f"id:{int(track)} {label}"
        (tw, th), _ = cv2.getTextSize(label, 0, font_scale, thickness)
        outside = p1[1] - th - 3 >= 0
        q2 = (p1[0] + tw, p1[1] - th - 3 if outside else p1[1] + th + 3)
        cv2.rectangle(out, p1, q2, colour, -1, cv2.LINE_AA)
        origin = (p1[0], p1[1] - 2 if outside else p1[1] + th + 2)
        cv2.putText(out, label, origin, 0, font_scale, _text_colour(colour), thickness, cv2.LINE_AA)
    return out


def draw_trails(image: np.ndarray, trails: Sequence[np.ndarray], ids: np.ndarray, line_width: int = 0) -> np.ndarray:
    """A copy of `image` with each track's trail (k, 2) xy points drawn as a line in the colour of its id."""
    out = np.ascontiguousarray(image.copy())
    lw = _line_width(out.shape, line_width)
    for trail, track in zip(trails, np.asarray(ids)):
        if len(trail) > 1:
            cv2.polylines(out, [np.round(trail).astype(np.int32)], False, class_colour(int(track)), lw, cv2.LINE_AA)
    return out
