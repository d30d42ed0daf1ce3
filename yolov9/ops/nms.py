"""Non-maximum suppression for the (B, 4 + nc [+ nm], A) output of the detect head, vectorised, without torchvision.

The `nm` trailing rows (a segment head's mask coefficients) ride along: they are not scored and come out as extra
columns of the kept detections.

Candidates (conf threshold, multi-label expansion, class filter) are selected in numpy and ranked best first
(stable: ties keep box, then class order), at most `max_nms` of them. Greedy NMS ("drop a box when an earlier kept
box of its class has IoU > iou_thres", torchvision's rule) decides each box from the boxes before it only, so the
first `max_det` survivors of a prefix of the ranking are the first `max_det` survivors of all of it: NMS runs on a
prefix that grows (at least 2x) until it yields `max_det` boxes; usually the first one (1,024 candidates) does.
On a prefix, the same-class pairs that overlap enough are listed by a sweep over x (sorted by class, then x1) and
the greedy rule is solved as the fixed point of that rule over those pairs, with no loop over boxes.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from yolov9.ops.boxes import xywh2xyxy

PAIRS_PER_CHUNK = 4_000_000  # candidate pairs examined at once (bounds memory for huge single-class inputs)
FIRST_PREFIX = 1024  # candidates ranked and suppressed first (at least 2 x max_det)
PREFIX_MARGIN = 1.25  # while a prefix yields too few boxes, grow it to where its survival rate gives 1.25 x max_det


def non_max_suppression(prediction: torch.Tensor, conf_thres: float = 0.25, iou_thres: float = 0.45,
                        classes: Optional[Sequence[int]] = None, agnostic: bool = False, multi_label: bool = False,
                        max_det: int = 300, max_nms: int = 30000, nm: int = 0) -> list[torch.Tensor]:
    """(B, 4 + nc + nm, A) xywh + scores (+ mask coefficients) -> per image (n, 6 + nm)
    [x1, y1, x2, y2, conf, cls, mc x nm], best first.

    multi_label keeps every (box, class) pair scoring above conf_thres; otherwise a box keeps its best class.
    At most `max_nms` candidates (highest scores) enter NMS and at most `max_det` detections leave it.
    """
    if not 0 <= conf_thres <= 1 or not 0 <= iou_thres <= 1:
        raise ValueError(f"conf_thres ({conf_thres}) and iou_thres ({iou_thres}) must lie in [0, 1]")
    if not 0 <= nm < prediction.shape[1] - 4:
        raise ValueError(f"nm ({nm}) must leave at least one class row in the {prediction.shape[1]} prediction rows")
    wanted = None if classes is None else np.asarray(classes)
    return [image_nms(p, conf_thres, iou_thres, wanted, agnostic, multi_label, max_det, max_nms, nm)
            for p in prediction]


def image_nms(pred: torch.Tensor, conf_thres: float, iou_thres: float, classes: Optional[np.ndarray],
              agnostic: bool, multi_label: bool, max_det: int, max_nms: int, nm: int = 0) -> torch.Tensor:
    """NMS of one image's (4 + nc + nm, A) predictions -> (n, 6 + nm) on pred's device and dtype."""
    values = pred.detach().float().cpu().numpy()
    num_scores = len(values) - 4 - nm
    scores, xywh = values[4:4 + num_scores], values[:4].astype(np.float64)  # float64 boxes, like the reference NMS
    box_index, cls, conf = candidates(scores, conf_thres, classes, multi_label)
    limit = min(len(conf), max_nms)
    prefix = min(limit, max(FIRST_PREFIX, 2 * max_det))
    while True:
        order = best_first(conf, prefix)
        boxes = box_index[order]
        labels = cls[order] if cls is not None else best_class(scores, boxes)
        xyxy = xywh2xyxy(xywh[:, boxes].T)
        keep = greedy_nms(xyxy, np.zeros_like(labels) if agnostic else labels, iou_thres)
        if len(keep) >= max_det or prefix == limit:
            break
        prefix = min(limit, max(2 * prefix, int(PREFIX_MARGIN * prefix * max_det / max(len(keep), 1))))
    boxes, labels = boxes[keep[:max_det]], labels[keep[:max_det]]
    kept = np.concatenate((xywh2xyxy(values[:4, boxes].T).T, scores[labels, boxes][None],
                           labels[None].astype(np.float32), values[4 + num_scores:, boxes]))
    return torch.from_numpy(np.ascontiguousarray(kept.T)).to(device=pred.device, dtype=pred.dtype)


def candidates(scores: np.ndarray, conf_thres: float, classes: Optional[np.ndarray], multi_label: bool
               ) -> tuple[np.ndarray, Optional[np.ndarray], np.ndarray]:
    """(nc, A) scores -> box index, class, conf of the pairs above conf_thres, ordered by box, then class.

    The class is None when it is each box's best class (computed later, only for the boxes that NMS looks at).
    """
    num_boxes = scores.shape[1]
    if multi_label:
        flat = np.flatnonzero(scores > conf_thres)  # class-major
        cls, box_index = np.divmod(flat, num_boxes)
        by_box = np.argsort(box_index.astype(np.uint16) if num_boxes <= 1 << 16 else box_index, kind="stable")
        box_index, cls, conf = box_index[by_box], cls[by_box], scores.ravel()[flat[by_box]]
    else:
        best = scores.max(0)
        box_index = np.flatnonzero(best > conf_thres)
        cls, conf = None, best[box_index]
        if classes is not None:
            cls = best_class(scores, box_index)
    if classes is not None:
        wanted = np.isin(cls, classes)
        box_index, cls, conf = box_index[wanted], cls[wanted], conf[wanted]
    return box_index, cls, conf


def best_class(scores: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(nc, A) scores, (n,) box indices -> (n,) index of each box's best class (the first one on ties)."""
    if 8 * len(boxes) < scores.shape[1]:
        return scores[:, boxes].argmax(0)
    return scores.argmax(0)[boxes]  # many boxes: one pass over the contiguous scores beats a gather


def best_first(conf: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest values of conf, best first; ties keep their input order (a stable ranking)."""
    if k >= len(conf) or k <= 0:
        return np.argsort(-conf, kind="stable")[:max(k, 0)]
    kth_best = np.partition(conf, len(conf) - k)[len(conf) - k]
    contenders = np.flatnonzero(conf >= kth_best)  # every value tied with the k-th competes, in input order
    return contenders[np.argsort(-conf[contenders], kind="stable")[:k]]


def greedy_nms(xyxy: np.ndarray, groups: np.ndarray, iou_thres: float, smaller: bool = False) -> np.ndarray:
    """Indices of the boxes kept by greedy NMS inside each group, in input order.

    xyxy: (N, 4) float64 sorted best first; groups: (N,) integer ids (classes). A box is dropped when an earlier
    kept box of its group has IoU > iou_thres with it (with `smaller`: intersection over the smaller box's area).
    """
    earlier, later = overlapping_pairs(xyxy, groups, iou_thres, smaller)
    keep = np.ones(len(xyxy), dtype=bool)
    while True:  # fixed point of "no earlier kept box suppresses me"; box k is settled once all before it are
        suppressed = np.zeros_like(keep)
        suppressed[later[keep[earlier]]] = True
        if np.array_equal(~suppressed, keep):
            return np.nonzero(keep)[0]
        keep = ~suppressed


def overlapping_pairs(xyxy: np.ndarray, groups: np.ndarray, iou_thres: float, smaller: bool = False
                      ) -> tuple[np.ndarray, np.ndarray]:
    """All same-group pairs (earlier, later) with IoU > iou_thres (with `smaller`: intersection over the smaller
    box's area), found by a sweep over x.

    IoU > t needs an x-overlap > t * width of either box, so box k (x1_k >= x1_i) can only pair with box i if
    x1_k < x1_i + (1 - t) * w_i (any overlap at all, x1_k < x1_i + w_i, for the smaller-box ratio): sorting by
    (group, x1) turns that into a contiguous window per box.
    """
    n = len(xyxy)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    width = np.maximum(xyxy[:, 2] - xyxy[:, 0], 0)
    span = 4 * (np.abs(xyxy).max() + 1)  # keys of different groups never interleave
    key = groups * span + xyxy[:, 0]
    order = np.argsort(key, kind="stable")
    reach = key + (1 if smaller else 1 - iou_thres) * width + 1e-6 * (np.abs(xyxy[:, 0]) + width + 1)  # relaxed
    end = np.searchsorted(key[order], reach[order], side="right")
    counts = np.maximum(end - np.arange(n) - 1, 0)
    x1, y1, x2, y2 = xyxy[order].T.copy()  # columns in sweep order: gathers stay contiguous
    area = (x2 - x1) * (y2 - y1)
    earlier, later = [], []
    for rows in _row_chunks(counts, PAIRS_PER_CHUNK):
        first = np.repeat(rows, counts[rows])
        second = first + 1 + np.arange(len(first)) - np.repeat(np.cumsum(counts[rows]) - counts[rows], counts[rows])
        iw = np.minimum(x2[first], x2[second]) - np.maximum(x1[first], x1[second])
        ih = np.minimum(y2[first], y2[second]) - np.maximum(y1[first], y1[second])
        inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
        with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 (zero-area boxes) gives nan: suppresses nothing
            base = np.minimum(area[first], area[second]) if smaller else area[first] + area[second] - inter
            over = inter / base > iou_thres
        i, j = order[first[over]], order[second[over]]
        earlier.append(np.minimum(i, j))
        later.append(np.maximum(i, j))
    return np.concatenate(earlier), np.concatenate(later)


def _row_chunks(counts: np.ndarray, budget: int) -> list[np.ndarray]:
    """Split row indices into consecutive chunks whose pair counts sum to about `budget` (bounds memory)."""
    chunk_of_row = np.cumsum(counts) // budget
    bounds = np.flatnonzero(np.diff(chunk_of_row)) + 1
    return np.split(np.arange(len(counts)), bounds)
