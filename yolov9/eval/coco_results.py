"""COCO results rows: the one writer of `predictions.json` entries, used by `val --save-json` and `detect`.

A row has `image_id`, `category_id`, `bbox` and `score`; with instance masks also `segmentation`, the mask in
original pixels as COCO's compressed RLE (`{"size": [h, w], "counts": str}`, pycocotools' encoding), so that one
file is scored by pycocotools as `bbox` and as `segm`.

One `image_id` rule: the COCO image id when the dataset is a COCO json (its `images[].id`), else the file stem as
an integer when it is numeric, else the stem. `category_id`: the dataset's own category id of the class (COCO json
input: its `category_id`s, sorted, in class order), else the class index.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from yolov9.ops.boxes import xyxy2ltwh
from yolov9.ops.rle import RunLengths, coco_mask_api, encode


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
                   category_ids: Optional[Sequence] = None, masks: Optional[Union[np.ndarray, RunLengths]] = None
                   ) -> list[dict]:
    """COCO results entries of one image: boxes (n, 4) xyxy original pixels -> bbox [x, y, w, h] (3 decimals),
    scores (5 decimals); masks (n, h, w) binary or RunLengths, in original pixels (optional) -> RLE
    `segmentation`."""
    ltwh = np.round(xyxy2ltwh(np.asarray(boxes, np.float64)), 3).tolist()
    rows = [{"image_id": image, "category_id": c, "bbox": box, "score": round(float(s), 5)}
            for box, s, c in zip(ltwh, np.asarray(scores).tolist(), category_id(classes, category_ids))]
    if masks is not None and len(rows):
        for row, rle in zip(rows, rle_segmentations(masks)):
            row["segmentation"] = rle
    return rows


def rle_segmentations(masks: Union[np.ndarray, RunLengths]) -> list[dict]:
    """Masks (bitmaps (n, h, w) or RunLengths) -> COCO compressed RLE dicts {"size": [h, w], "counts": str},
    pycocotools' encoding (run lengths go through its uncompressed-RLE reader)."""
    if not isinstance(masks, RunLengths):
        return encode(masks)
    if not len(masks):
        return []
    filled = masks.run_counts > 0
    previous_end = np.concatenate(([0], masks.ends[:-1]))
    previous_end[masks.offsets[:-1][filled]] = 0  # a mask's first run follows its first pixel
    lengths = np.stack((masks.starts - previous_end, masks.ends - masks.starts), 1).ravel()  # clear, set, ...
    last_end = np.zeros(len(masks), np.int64)
    last_end[filled] = masks.ends[masks.offsets[1:][filled] - 1]
    tails = masks.sizes.prod(1) - last_end
    uncompressed = [{"size": size.tolist(), "counts": part.tolist() + ([int(tail)] if tail else [])}
                    for part, tail, size in zip(np.split(lengths, 2 * masks.offsets[1:-1]), tails, masks.sizes)]
    h, w = masks.sizes[0].tolist()
    return [{"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}
            for rle in coco_mask_api().frPyObjects(uncompressed, h, w)]
