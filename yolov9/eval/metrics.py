"""Detection metrics besides COCO AP: P / R / F1 curves from the COCO matching, and the confusion matrix."""
from __future__ import annotations

import numpy as np
import torch

from yolov9.ops.boxes import box_iou



def _first_unique(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mask of pairs (sorted best first) kept by two passes: first pair of each `a`, then first of each `b`."""
    a_np, b_np = a.numpy(), b.numpy()
    keep = np.zeros(len(a_np), dtype=bool)
    first_a = np.unique(a_np, return_index=True)[1]
    first_a.sort()
    first_b = first_a[np.unique(b_np[first_a], return_index=True)[1]]
    keep[first_b] = True
    return torch.from_numpy(keep)


def precision_recall_curves(true_positive: np.ndarray, counted: np.ndarray, conf: np.ndarray, pred_cls: np.ndarray,
                            positives: np.ndarray, eps: float = 1e-16) -> dict[str, np.ndarray]:
    """Precision / recall / F1 per class against the confidence threshold, and their values at the confidence of
    the best mean F1.

    true_positive, counted: (N,) bool per detection from the COCO matching at IoU 0.5 (a detection that is not
    counted - matched to crowd, beyond max_det - takes no part); conf, pred_cls: (N,); positives: (nc,) ground
    truth per class. Curves are sampled at 1000 confidences in [0, 1].
    """
    nc = len(positives)
    order = np.argsort(-conf, kind="stable")
    order = order[counted[order]]
    tp, conf, pred_cls = true_positive[order], conf[order], pred_cls[order].astype(np.int64)
    grid = np.linspace(0, 1, 1000)
    p_curve, r_curve = np.zeros((nc, len(grid))), np.zeros((nc, len(grid)))
    for c in np.nonzero(positives)[0]:  # one pass per class, vectorised over its detections
        mine = pred_cls == c
        if not mine.any():
            continue
        tpc = np.cumsum(tp[mine])
        fpc = np.cumsum(~tp[mine])
        r_curve[c] = np.interp(-grid, -conf[mine], tpc / (positives[c] + eps), left=0)
        p_curve[c] = np.interp(-grid, -conf[mine], tpc / (tpc + fpc), left=1)
    f1 = 2 * p_curve * r_curve / (p_curve + r_curve + eps)
    best = int(f1[positives > 0].mean(0).argmax()) if positives.any() else 0
    return {"precision": p_curve[:, best], "recall": r_curve[:, best], "f1": f1[:, best], "positives": positives,
            "grid": grid, "p_curve": p_curve, "r_curve": r_curve, "f1_curve": f1}


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
