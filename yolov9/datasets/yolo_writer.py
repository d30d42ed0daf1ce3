"""Write a dataset in the YOLO layout: images/<split>/*.jpg|png, labels/<split>/*.txt and a data YAML.

Each label line is `class cx cy w h`, or with polygons `class x1 y1 x2 y2 ...` (YOLO-seg), normalised to the
image size. Files are written atomically; the data YAML is written by `yolov9.data.config.write_data_yaml`.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from yolov9.data.formats import yolo_label_text
from yolov9.errors import DatasetError
from yolov9.io.atomic import atomic_write_bytes
from yolov9.ops.boxes import normalize_boxes, xyxy2xywh

IMAGE_OPTIONS = {".jpg": cv2.IMWRITE_JPEG_QUALITY, ".png": cv2.IMWRITE_PNG_COMPRESSION}


def label_lines(boxes: np.ndarray, classes: np.ndarray, width: int, height: int) -> str:
    """Boxes (n, 4) x1y1x2y2 pixels and classes (n,) -> YOLO label text (one `c cx cy w h` line per box)."""
    return yolo_label_text(classes, normalize_boxes(xyxy2xywh(boxes.astype(np.float64)), (height, width)))


def polygon_lines(polygons: Sequence[np.ndarray], classes: np.ndarray, width: int, height: int) -> str:
    """Polygons (m_i, 2) xy pixels and classes (n,) -> YOLO-seg label text (one `c x1 y1 x2 y2 ...` line each)."""
    scale = np.array([width, height], np.float64)
    return yolo_label_text(classes, [np.asarray(p, np.float64) / scale for p in polygons])


def prepare_output(out: Path, overwrite: bool) -> None:
    """Refuse to mix a new build with an old one in `out`; with `overwrite`, remove the old images/ and labels/."""
    existing = [out / folder for folder in ("images", "labels") if (out / folder).exists()]
    if existing and not overwrite:
        raise DatasetError(f"{out}: already holds {existing[0].name}/; pass overwrite=True (--overwrite) to rebuild")
    for folder in existing:
        shutil.rmtree(folder)


def write_sample(root: Path, split: str, stem: str, image: np.ndarray, boxes: Optional[np.ndarray],
                 classes: np.ndarray, quality: int = 90, polygons: Optional[Sequence[np.ndarray]] = None,
                 suffix: str = ".jpg") -> None:
    """Write one image (H, W, 3) BGR or (H, W) grey as `suffix` (.jpg at `quality`, or lossless .png) and its labels:
    the boxes (n, 4) x1y1x2y2 pixels, or the polygons (n of (m_i, 2) xy pixels) as YOLO-seg lines when given."""
    option = IMAGE_OPTIONS[suffix]
    ok, encoded = cv2.imencode(suffix, image, [option, quality if suffix == ".jpg" else 9])
    if not ok:
        raise DatasetError(f"could not encode {stem} as {suffix}")
    height, width = image.shape[:2]
    text = (label_lines(boxes, classes, width, height) if polygons is None
            else polygon_lines(polygons, classes, width, height))
    atomic_write_bytes(root / "images" / split / f"{stem}{suffix}", encoded.tobytes())
    atomic_write_bytes(root / "labels" / split / f"{stem}.txt", text.encode())
