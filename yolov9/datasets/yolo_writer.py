"""Write a dataset in the YOLO layout: images/<split>/*.jpg, labels/<split>/*.txt and a data YAML.

Each label line is `class cx cy w h`, normalised to the image size. Files are written atomically; the data YAML
is written by `yolov9.data.config.write_data_yaml`.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

from yolov9.data.formats import yolo_label_text
from yolov9.errors import DatasetError
from yolov9.io.atomic import atomic_write_bytes
from yolov9.ops.boxes import normalize_boxes, xyxy2xywh


def label_lines(boxes: np.ndarray, classes: np.ndarray, width: int, height: int) -> str:
    """Boxes (n, 4) x1y1x2y2 pixels and classes (n,) -> YOLO label text (one `c cx cy w h` line per box)."""
    return yolo_label_text(classes, normalize_boxes(xyxy2xywh(boxes.astype(np.float64)), (height, width)))


def prepare_output(out: Path, overwrite: bool) -> None:
    """Refuse to mix a new build with an old one in `out`; with `overwrite`, remove the old images/ and labels/."""
    existing = [out / folder for folder in ("images", "labels") if (out / folder).exists()]
    if existing and not overwrite:
        raise DatasetError(f"{out}: already holds {existing[0].name}/; pass overwrite=True (--overwrite) to rebuild")
    for folder in existing:
        shutil.rmtree(folder)


def write_sample(root: Path, split: str, stem: str, image: np.ndarray, boxes: np.ndarray, classes: np.ndarray,
                 quality: int = 90) -> None:
    """Write one BGR image (H, W, 3) as JPEG and its boxes (n, 4) x1y1x2y2 pixels as a YOLO label file."""
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DatasetError(f"could not encode {stem} as JPEG")
    height, width = image.shape[:2]
    atomic_write_bytes(root / "images" / split / f"{stem}.jpg", encoded.tobytes())
    atomic_write_bytes(root / "labels" / split / f"{stem}.txt",
                       label_lines(boxes, classes, width, height).encode())
