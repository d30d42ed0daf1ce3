"""Association of tracks and detections: IoU costs and an optimal one-to-one assignment (the `lap` package's
Jonker-Volgenant solver, BSD-2; the `track` extra)."""
from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np
import torch

from yolov9.errors import YOLOv9Error
from yolov9.ops.boxes import box_iou


def require_lap() -> ModuleType:
    """The `lap` module, or one clear error saying how to install it."""
    try:
        return importlib.import_module("lap")
    except ImportError:
        raise YOLOv9Error("tracking needs the `lap` package (linear assignment): pip install 'yolov9[track]' "
                          "or pip install lap") from None


def iou_matrix(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes -> (N, M) float64."""
    if not len(boxes1) or not len(boxes2):
        return np.zeros((len(boxes1), len(boxes2)))
    return box_iou(torch.from_numpy(np.asarray(boxes1, np.float64)),
                   torch.from_numpy(np.asarray(boxes2, np.float64))).numpy()


def assign(cost: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one matching of rows and columns, each pair costing at most `max_cost`.

    Returns (k, 2) matched (row, column) pairs, the unmatched rows and the unmatched columns (index arrays).
    """
    rows, cols = cost.shape
    if rows == 0 or cols == 0:
        return np.zeros((0, 2), np.int64), np.arange(rows), np.arange(cols)
    _, column_of_row, _ = require_lap().lapjv(np.asarray(cost, np.float64), extend_cost=True, cost_limit=max_cost)
    matched_rows = np.flatnonzero(column_of_row >= 0)
    pairs = np.stack((matched_rows, column_of_row[matched_rows]), 1).astype(np.int64)
    return pairs, np.flatnonzero(column_of_row < 0), np.setdiff1d(np.arange(cols), pairs[:, 1])
