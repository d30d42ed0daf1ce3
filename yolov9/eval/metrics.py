"""Detection metrics of the validator: TP matching at 10 IoU thresholds, AP per class, P/R at max F1, confusion.

AP uses COCO's rule: precision made monotone, sampled at 101 recall points, averaged.
"""
from __future__ import annotations

import numpy as np
import torch

from yolov9.ops.boxes import box_iou

IOU_THRESHOLDS = torch.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def match_predictions(detections: torch.Tensor, labels: torch.Tensor,
                      thresholds: torch.Tensor = IOU_THRESHOLDS) -> torch.Tensor:
    """Which detections are true positives at each IoU threshold -> (n, T) bool.

    detections: (n, 6) [x1, y1, x2, y2, conf, cls]; labels: (m, 5) [cls, x1, y1, x2, y2], same pixels.
    Greedy by IoU: each label and each detection is matched at most once per threshold.
    """
    correct = torch.zeros(len(detections), len(thresholds), dtype=torch.bool)
    if not len(detections) or not len(labels):
        return correct
    iou = box_iou(labels[:, 1:], detections[:, :4]) * (labels[:, :1] == detections[:, 5])  # (m, n), 0 if class differs
    label_index, det_index = torch.nonzero(iou >= thresholds.min(), as_tuple=True)
    pair_iou = iou[label_index, det_index]
    order = torch.argsort(pair_iou, descending=True, stable=True)
    label_index, det_index, pair_iou = label_index[order].tolist(), det_index[order], pair_iou[order]
    for t, threshold in enumerate(thresholds.tolist()):
        above = pair_iou >= threshold
        first = _first_unique(det_index[above], torch.as_tensor(label_index)[above])
        correct[det_index[above][first], t] = True
    return correct


def _first_unique(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mask of pairs (sorted best first) kept by two passes: first pair of each `a`, then first of each `b`."""
    a_np, b_np = a.numpy(), b.numpy()
    keep = np.zeros(len(a_np), dtype=bool)
    first_a = np.unique(a_np, return_index=True)[1]
    first_a.sort()
    first_b = first_a[np.unique(b_np[first_a], return_index=True)[1]]
    keep[first_b] = True
    return torch.from_numpy(keep)


def ap_per_class(tp: np.ndarray, conf: np.ndarray, pred_cls: np.ndarray, target_cls: np.ndarray, nc: int,
                 eps: float = 1e-16) -> dict[str, np.ndarray]:
    """AP (nc, T), and precision / recall / F1 (nc,) at the confidence of best mean F1, with curves for plots.

    tp: (N, T) bool over all detections of the set; conf, pred_cls: (N,); target_cls: (M,) classes of all labels.
    """
    order = np.argsort(-conf, kind="stable")
    tp, conf, pred_cls = tp[order], conf[order], pred_cls[order].astype(np.int64)
    positives = np.bincount(target_cls.astype(np.int64), minlength=nc)[:nc]
    grid = np.linspace(0, 1, 1000)
    ap = np.zeros((nc, tp.shape[1]))
    p_curve, r_curve = np.zeros((nc, len(grid))), np.zeros((nc, len(grid)))
    for c in np.nonzero(positives)[0]:  # one pass per class, vectorised over its detections
        mine = pred_cls == c
        if not mine.any():
            continue
        tpc = np.cumsum(tp[mine], 0)
        fpc = np.cumsum(~tp[mine], 0)
        recall = tpc / (positives[c] + eps)
        precision = tpc / (tpc + fpc)
        r_curve[c] = np.interp(-grid, -conf[mine], recall[:, 0], left=0)
        p_curve[c] = np.interp(-grid, -conf[mine], precision[:, 0], left=1)
        ap[c] = [coco_ap(recall[:, t], precision[:, t]) for t in range(tp.shape[1])]
    f1 = 2 * p_curve * r_curve / (p_curve + r_curve + eps)
    best = int(f1[positives > 0].mean(0).argmax()) if positives.any() else 0
    return {"ap": ap, "precision": p_curve[:, best], "recall": r_curve[:, best], "f1": f1[:, best],
            "positives": positives, "grid": grid, "p_curve": p_curve, "r_curve": r_curve, "f1_curve": f1}


def coco_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """COCO 101-point AP of one precision/recall curve (detections best first)."""
    monotone = np.maximum.accumulate(precision[::-1])[::-1]
    index = np.searchsorted(recall, RECALL_POINTS, side="left")
    sampled = np.where(index < len(monotone), monotone[np.minimum(index, len(monotone) - 1)], 0.0)
    return float(sampled.mean())


def confusion_matrix(detections: torch.Tensor, labels: torch.Tensor, nc: int, conf: float = 0.25,
                     iou_thres: float = 0.45) -> np.ndarray:
    """(nc + 1, nc + 1) counts for one image, rows predicted class, columns true class; index nc = background."""
    matrix = np.zeros((nc + 1, nc + 1), dtype=np.int64)
    detections = detections[detections[:, 4] > conf]
    true_cls = labels[:, 0].long().numpy()
    pred_cls = detections[:, 5].long().numpy()
    matched_label = np.zeros(len(labels), dtype=bool)
    matched_det = np.zeros(len(detections), dtype=bool)
    if len(labels) and len(detections):
        iou = box_iou(labels[:, 1:], detections[:, :4])
        label_index, det_index = torch.nonzero(iou > iou_thres, as_tuple=True)
        order = torch.argsort(iou[label_index, det_index], descending=True, stable=True)
        label_index, det_index = label_index[order], det_index[order]
        first = _first_unique(det_index, label_index).numpy()
        li, di = label_index.numpy()[first], det_index.numpy()[first]
        np.add.at(matrix, (pred_cls[di], true_cls[li]), 1)
        matched_label[li], matched_det[di] = True, True
    np.add.at(matrix, (np.full((~matched_label).sum(), nc), true_cls[~matched_label]), 1)
    np.add.at(matrix, (pred_cls[~matched_det], np.full((~matched_det).sum(), nc)), 1)
    return matrix
