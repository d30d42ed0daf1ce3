"""Per-sample transforms: reading, resizing, letterbox, HSV jitter, flips.

A `Sample` holds one image (uint8 HWC RGB), its boxes (n, 4) xyxy in pixels, classes (n,) and the objects'
outlines as `Polygons` in pixels (any number of rings per box, none for a plain box).
Every random transform takes a `numpy.random.Generator`, so a sample depends only on its generator's seed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import cv2
import numpy as np
from PIL import Image, ImageOps

from yolov9.data.polygons import Polygons
from yolov9.errors import DatasetError
from yolov9.ops.boxes import normalize_boxes, xyxy2xywh
from yolov9.ops.letterbox import Letterbox

_REDUCED_FLAGS = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
_JPEG_SUFFIXES = (".jpg", ".jpeg", ".mpo")


@dataclass
class Sample:
    """One image and its labels; boxes are xyxy pixels of `image`."""

    image: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    polygons: Polygons = field(default_factory=Polygons.empty)

    def __post_init__(self) -> None:
        if len(self.polygons) != len(self.boxes):
            if len(self.polygons):
                raise ValueError(f"{len(self.polygons)} polygon objects for {len(self.boxes)} boxes")
            self.polygons = Polygons.empty(len(self.boxes))

    def select(self, keep: np.ndarray) -> "Sample":
        """The sample with only the boxes where `keep` (bool mask or indices) holds."""
        index = np.flatnonzero(keep) if keep.dtype == bool else keep
        return Sample(self.image, self.boxes[index], self.classes[index], self.polygons.select(index))


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


def letterbox_sample(sample: Sample, new_shape, auto: bool = False, scaleup: bool = True
                     ) -> tuple[Sample, Letterbox]:
    """A sample's image, boxes and polygons through `Letterbox.fit(...)`; returns it and the letterbox."""
    box = Letterbox.fit(sample.image.shape[:2], new_shape, auto=auto, scaleup=scaleup)
    return Sample(box.apply(sample.image), box.boxes_to_canvas(sample.boxes).astype(np.float32), sample.classes,
                  sample.polygons.map_points(box.points_to_canvas)), box


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
    """Mirror the image left-right (`horizontal`) or top-bottom, with its boxes and polygons."""
    h, w = sample.image.shape[:2]
    axis, size = (0, w) if horizontal else (1, h)
    image = cv2.flip(sample.image, 1 if horizontal else 0)
    boxes = sample.boxes.copy()
    boxes[:, [axis, axis + 2]] = size - sample.boxes[:, [axis + 2, axis]]
    points = sample.polygons.points.copy()
    points[:, axis] = size - points[:, axis]
    return Sample(image, boxes, sample.classes, sample.polygons.with_points(points))


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
    xywh = normalize_boxes(xyxy2xywh(sample.boxes.reshape(-1, 4)), sample.image.shape[:2])
    return np.concatenate((sample.classes.reshape(-1, 1), xywh), 1).astype(np.float32)
