"""COCO results rows: the one writer of `predictions.json` entries, used by `val --save-json` and `detect`.

One `image_id` rule: the COCO image id when the dataset is a COCO json (its `images[].id`), else the file stem as
an integer when it is numeric, else the stem. `category_id`: the dataset's own category id of the class (COCO json
input: its `category_id`s, sorted, in class order), else the class index.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from yolov9.ops.boxes import xyxy2ltwh


def image_id(path: Union[str, Path], coco_ids: Optional[Mapping[str, Any]] = None) -> Union[int, str]:
    """The COCO `image_id` of an image file (see the module docstring)."""
    if coco_ids and str(path) in coco_ids:
        return coco_ids[str(path)]
    stem = Path(path).stem
    return int(stem) if stem.isnumeric() else stem


def category_id(classes: np.ndarray, category_ids: Optional[Sequence] = None) -> list:
    """Class indices (n,) -> COCO category ids."""
    classes = np.asarray(classes).astype(np.int64)
    return classes.tolist() if category_ids is None else [category_ids[c] for c in classes]


def detection_rows(image: Union[int, str], boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
                   category_ids: Optional[Sequence] = None) -> list[dict]:
    """COCO results entries of one image: boxes (n, 4) xyxy original pixels -> bbox [x, y, w, h] (3 decimals),
    scores (5 decimals)."""
    ltwh = np.round(xyxy2ltwh(np.asarray(boxes, np.float64)), 3).tolist()
    return [{"image_id": image, "category_id": c, "bbox": box, "score": round(float(s), 5)}
            for box, s, c in zip(ltwh, np.asarray(scores).tolist(), category_id(classes, category_ids))]
