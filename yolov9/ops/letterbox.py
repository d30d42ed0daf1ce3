"""The letterbox: resize keeping the aspect ratio, pad to the network's shape, and map coordinates back.

One `Letterbox` describes the whole mapping from an original image of `shape` (h, w) to a padded canvas:
`canvas_xy = original_xy * gain + pad`. It resizes and pads images (forward) and maps boxes and points in both
directions; the dataset, the predictor, the validator, INT8 calibration and the runtime's padding all use it,
and the pad value is defined here only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import cv2
import numpy as np
import torch

from yolov9.ops.boxes import clip_boxes

PAD_VALUE = 114  # grey of the padding (uint8), the official value

Shape = tuple[int, int]


def _pair(size: Union[int, Sequence[int]]) -> Shape:
    return (int(size), int(size)) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))


@dataclass(frozen=True)
class Letterbox:
    """original (h, w) `shape` -> `resized` (h, w) -> `canvas` (h, w), the resized image at offset `pad` (left, top)."""

    shape: Shape
    resized: Shape
    canvas: Shape
    pad: tuple[int, int]

    @classmethod
    def fit(cls, shape: Sequence[int], new_shape: Union[int, Sequence[int]], auto: bool = False, stride: int = 32,
            scaleup: bool = True) -> "Letterbox":
        """The official rule: r = min(new / old) (at most 1 unless `scaleup`), resized = round(w r), round(h r);
        the padding is split in two (left = round(d/2 - 0.1)); `auto` pads only up to a multiple of `stride`
        (the minimal stride-multiple canvas, for models with dynamic shapes)."""
        h, w = int(shape[0]), int(shape[1])
        target = _pair(new_shape)
        r = min(target[0] / h, target[1] / w)
        if not scaleup:
            r = min(r, 1.0)
        new_w, new_h = round(w * r), round(h * r)
        dw, dh = target[1] - new_w, target[0] - new_h
        if auto:
            dw, dh = dw % stride, dh % stride
        top, left = round(dh / 2 - 0.1), round(dw / 2 - 0.1)
        canvas = (new_h + top + round(dh / 2 + 0.1), new_w + left + round(dw / 2 + 0.1))
        return cls((h, w), (new_h, new_w), canvas, (left, top))

    @property
    def gain(self) -> tuple[float, float]:
        """(gain_h, gain_w): resized / original."""
        return self.resized[0] / self.shape[0], self.resized[1] / self.shape[1]

    def from_source(self, shape: Sequence[int]) -> "Letterbox":
        """The same canvas seen from an image of another size (e.g. the file before a first resize)."""
        return Letterbox((int(shape[0]), int(shape[1])), self.resized, self.canvas, self.pad)

    def apply(self, image: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """Resize (H, W, C) `image` (of `shape`) and pad it with PAD_VALUE to the canvas."""
        if image.shape[:2] != self.resized:
            image = cv2.resize(image, (self.resized[1], self.resized[0]), interpolation=interpolation)
        left, top = self.pad
        bottom, right = self.canvas[0] - self.resized[0] - top, self.canvas[1] - self.resized[1] - left
        if top or bottom or left or right:
            image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT,
                                       value=(PAD_VALUE,) * (image.shape[2] if image.ndim == 3 else 1))
        return image

    def _scale_shift(self, like) -> tuple:
        gain_h, gain_w = self.gain
        if isinstance(like, torch.Tensor):
            return like.new_tensor([gain_w, gain_h]), like.new_tensor([float(self.pad[0]), float(self.pad[1])])
        dtype = like.dtype if like.dtype.kind == "f" else np.float64
        return np.array([gain_w, gain_h], dtype), np.array(self.pad, dtype)

    def points_to_canvas(self, points):
        """(..., 2) xy in original pixels -> canvas pixels."""
        scale, shift = self._scale_shift(points)
        return points * scale + shift

    def points_to_original(self, points):
        """(..., 2) xy in canvas pixels -> original pixels (not clipped)."""
        scale, shift = self._scale_shift(points)
        return (points - shift) / scale

    def boxes_to_canvas(self, boxes):
        """(..., 4) xyxy in original pixels -> canvas pixels."""
        return self.points_to_canvas(boxes.reshape(*boxes.shape[:-1], 2, 2)).reshape(boxes.shape)

    def boxes_to_original(self, boxes):
        """(..., 4) xyxy in canvas pixels -> original pixels, clipped to the original image."""
        back = self.points_to_original(boxes.reshape(*boxes.shape[:-1], 2, 2)).reshape(boxes.shape)
        return clip_boxes(back, self.shape)
