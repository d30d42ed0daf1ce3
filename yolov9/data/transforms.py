"""Per-sample transforms: reading, resizing, letterbox, HSV jitter, flips.

A `Sample` holds one image (uint8 HWC RGB), its boxes (n, 4) xyxy in pixels, classes (n,) and optional
polygon segments (list of (k, 2) pixel arrays, one per box, empty arrays where a box has none).
Every random transform takes a `numpy.random.Generator`, so a sample depends only on its generator's seed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import cv2
import numpy as np
from PIL import Image, ImageOps

from yolov9.errors import DatasetError

PAD_VALUE = 114
_REDUCED_FLAGS = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
_JPEG_SUFFIXES = (".jpg", ".jpeg", ".mpo")


@dataclass
class Sample:
    """One image and its labels; boxes are xyxy pixels of `image`."""

    image: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    segments: list = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.segments) != len(self.boxes):
            self.segments = [np.zeros((0, 2), np.float32) for _ in range(len(self.boxes))]

    def select(self, keep: np.ndarray) -> "Sample":
        """The sample with only the boxes where `keep` (bool mask or indices) holds."""
        index = np.flatnonzero(keep) if keep.dtype == bool else keep
        return Sample(self.image, self.boxes[index], self.classes[index], [self.segments[i] for i in index])


def read_image(path: Union[str, Path], min_long_side: int = 0, long_side: int = 0) -> np.ndarray:
    """Decode an image file to uint8 RGB HWC (EXIF orientation applied, gray/16-bit/RGBA/CMYK converted).

    For JPEGs whose known long side is at least 2x `min_long_side`, libjpeg's DCT scaling decodes at 1/2, 1/4 or
    1/8 size directly, which is several times faster than decoding at full size and resizing.
    """
    path = str(path)
    flag = cv2.IMREAD_COLOR
    if min_long_side and long_side and path.lower().endswith(_JPEG_SUFFIXES):
        for factor in (8, 4, 2):
            if long_side // factor >= min_long_side:
                flag = _REDUCED_FLAGS[factor]
                break
    image = cv2.imread(path, flag)
    if image is None:
        image = _read_with_pillow(path)
    else:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image


def _read_with_pillow(path: str) -> np.ndarray:
    """Fallback decoder for what OpenCV cannot read; raises DatasetError naming the file."""
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I"):
                array = np.asarray(im, dtype=np.float64)
                scale = 255.0 / max(float(array.max()), 1.0) if im.mode == "I" else 1 / 257
                im = Image.fromarray(np.clip(array * scale, 0, 255).astype(np.uint8))
            return np.ascontiguousarray(np.asarray(im.convert("RGB")))
    except (OSError, ValueError) as e:
        raise DatasetError(f"{path}: cannot decode image ({e})") from None


def resize_long_side(image: np.ndarray, size: int, augment: bool) -> tuple[np.ndarray, float]:
    """Resize so the long side equals `size` (INTER_LINEAR when augmenting or upscaling, else INTER_AREA)."""
    h, w = image.shape[:2]
    r = size / max(h, w)
    if r == 1:
        return image, r
    interpolation = cv2.INTER_LINEAR if (augment or r > 1) else cv2.INTER_AREA
    new_w, new_h = min(size, max(1, round(w * r))), min(size, max(1, round(h * r)))
    return cv2.resize(image, (new_w, new_h), interpolation=interpolation), r


def letterbox(image: np.ndarray, new_shape: Union[int, Sequence[int]], color=(PAD_VALUE,) * 3, auto: bool = True,
              scaleup: bool = True, stride: int = 32) -> tuple[np.ndarray, tuple[float, float], tuple[int, int]]:
    """Resize keeping the aspect ratio and pad to `new_shape` (h, w), the official rule.

    r = min(new / old) (at most 1 unless `scaleup`); the unpadded size is round(w r), round(h r); the padding is
    split in two halves (left = round(d/2 - 0.1)); `auto=True` pads only up to a multiple of `stride`.
    Returns (image, (gain_h, gain_w), (pad_left, pad_top)); original_xy = (letterboxed_xy - pad) / gain.
    """
    if isinstance(new_shape, int):
        new_shape = (new_shape, new_shape)
    h, w = image.shape[:2]
    r = min(new_shape[0] / h, new_shape[1] / w)
    if not scaleup:
        r = min(r, 1.0)
    new_w, new_h = round(w * r), round(h * r)
    dw, dh = new_shape[1] - new_w, new_shape[0] - new_h
    if auto:
        dw, dh = dw % stride, dh % stride
    if (w, h) != (new_w, new_h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    top, bottom = round(dh / 2 - 0.1), round(dh / 2 + 0.1)
    left, right = round(dw / 2 - 0.1), round(dw / 2 + 0.1)
    if top or bottom or left or right:
        image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=tuple(color))
    return image, (new_h / h, new_w / w), (left, top)


def letterbox_sample(sample: Sample, new_shape, auto: bool = False, scaleup: bool = True
                     ) -> tuple[Sample, tuple[float, float], tuple[int, int]]:
    """`letterbox` applied to a sample's image, boxes and segments."""
    image, (gain_h, gain_w), (left, top) = letterbox(sample.image, new_shape, auto=auto, scaleup=scaleup)
    scale, shift = np.array([gain_w, gain_h], np.float32), np.array([left, top], np.float32)
    boxes = sample.boxes * np.tile(scale, 2) + np.tile(shift, 2)
    segments = [s * scale + shift for s in sample.segments]
    return Sample(image, boxes.astype(np.float32), sample.classes, segments), (gain_h, gain_w), (left, top)


def augment_hsv(image: np.ndarray, rng: np.random.Generator, hgain: float, sgain: float, vgain: float) -> np.ndarray:
    """Random hue/saturation/value gains (uniform in 1 +- gain) applied through 256-entry lookup tables."""
    if not (hgain or sgain or vgain):
        return image
    gains = rng.uniform(-1, 1, 3) * (hgain, sgain, vgain) + 1
    x = np.arange(256, dtype=np.float32)
    table = np.stack(((x * gains[0]) % 180, np.clip(x * gains[1], 0, 255), np.clip(x * gains[2], 0, 255)), 1)
    hsv = cv2.LUT(cv2.cvtColor(image, cv2.COLOR_RGB2HSV), table.astype(np.uint8)[None])  # one table per channel
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def flip(sample: Sample, horizontal: bool) -> Sample:
    """Mirror the image left-right (`horizontal`) or top-bottom, with its boxes and segments."""
    h, w = sample.image.shape[:2]
    axis, size = (0, w) if horizontal else (1, h)
    image = cv2.flip(sample.image, 1 if horizontal else 0)
    boxes = sample.boxes.copy()
    boxes[:, [axis, axis + 2]] = size - sample.boxes[:, [axis + 2, axis]]
    segments = []
    for s in sample.segments:
        s = s.copy()
        s[:, axis] = size - s[:, axis]
        segments.append(s)
    return Sample(image, boxes, sample.classes, segments)


def random_flips(sample: Sample, rng: np.random.Generator, flipud: float, fliplr: float) -> Sample:
    """Vertical flip with probability `flipud`, then horizontal flip with probability `fliplr`."""
    draws = rng.random(2)
    if draws[0] < flipud:
        sample = flip(sample, horizontal=False)
    if draws[1] < fliplr:
        sample = flip(sample, horizontal=True)
    return sample


def to_targets(sample: Sample) -> np.ndarray:
    """(n, 5) [class, cx, cy, w, h] normalised to the sample's image size."""
    h, w = sample.image.shape[:2]
    boxes = sample.boxes.reshape(-1, 4)
    xywh = np.stack(((boxes[:, 0] + boxes[:, 2]) / 2 / w, (boxes[:, 1] + boxes[:, 3]) / 2 / h,
                     (boxes[:, 2] - boxes[:, 0]) / w, (boxes[:, 3] - boxes[:, 1]) / h), 1)
    return np.concatenate((sample.classes.reshape(-1, 1), xywh), 1).astype(np.float32)


def clip_boxes(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Clip xyxy boxes (n, 4) to an image of shape (h, w)."""
    h, w = shape
    return np.clip(boxes, 0, (w, h, w, h)).astype(np.float32)


def empty_sample(image: Optional[np.ndarray] = None) -> Sample:
    return Sample(image, np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), [])
