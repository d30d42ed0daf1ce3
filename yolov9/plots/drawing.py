"""Annotate images with boxes, class names and confidences (OpenCV only, no font files)."""
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


def draw_detections(image: np.ndarray, boxes: np.ndarray, scores: Optional[np.ndarray], classes: np.ndarray,
                    names: Sequence[str], line_width: int = 0) -> np.ndarray:
    """A copy of `image` (H, W, 3) BGR with boxes (n, 4) xyxy pixels labelled "name 0.87" (just "name" when
    `scores` is None)."""
    out = np.ascontiguousarray(image.copy())
    lw = line_width or max(round(sum(out.shape[:2]) / 2 * 0.003), 2)
    font_scale = lw / 3
    thickness = max(lw - 1, 1)
    scores = [None] * len(boxes) if scores is None else np.asarray(scores)
    for box, score, cls in zip(np.asarray(boxes), scores, np.asarray(classes)):
        colour = class_colour(int(cls))
        p1, p2 = (int(box[0]), int(box[1])), (int(box[2]), int(box[3]))
        cv2.rectangle(out, p1, p2, colour, lw, cv2.LINE_AA)
        name = names[int(cls)] if 0 <= int(cls) < len(names) else str(int(cls))
        label = name if score is None else f"{name} {score:.2f}"
        (tw, th), _ = cv2.getTextSize(label, 0, font_scale, thickness)
        outside = p1[1] - th - 3 >= 0
        q2 = (p1[0] + tw, p1[1] - th - 3 if outside else p1[1] + th + 3)
        cv2.rectangle(out, p1, q2, colour, -1, cv2.LINE_AA)
        origin = (p1[0], p1[1] - 2 if outside else p1[1] + th + 2)
        cv2.putText(out, label, origin, 0, font_scale, _text_colour(colour), thickness, cv2.LINE_AA)
    return out
