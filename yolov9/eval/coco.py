"""COCO box mAP, vectorised in numpy, with the exact rules of pycocotools' COCOeval (bbox).

Same rules as the official tool: per (image, category) greedy matching of detections in score order (at most 100
each) to the unmatched ground truth with the highest IoU (ties: the later one), non-ignored ground truth first;
crowd boxes are ignored, may be matched many times and their IoU divides by the detection's area; ground truth
outside an area range is ignored there, and so are unmatched detections outside it; 101-point interpolated precision
made monotone; categories without ground truth score -1 and are left out of the means.
"""
from __future__ import annotations

import json
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, 101, endpoint=True)
AREA_RANGES = np.array([[0, 1e5 ** 2], [0, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]])  # all, S, M, L
MAX_DETS = (1, 10, 100)
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def coco_map(ground_truth: Union[dict, str, Path], detections: Union[list, str, Path]) -> dict[str, Any]:
    """COCO annotation dict (or JSON path) + results list (or path) -> the 12 COCO stats and per-class AP.

    Returns {"AP": .., "AP50": .., ..., "ARl": .., "per_class": {category_id: AP@[.5:.95] or -1 without GT}}.
    """
    gt = _read_json(ground_truth)
    dt = _read_json(detections)
    image_ids = sorted({image["id"] for image in gt["images"]})
    category_ids = sorted({category["id"] for category in gt["categories"]})
    image_rank = {image_id: i for i, image_id in enumerate(image_ids)}
    category_rank = {category_id: k for k, category_id in enumerate(category_ids)}
    missing = {d["image_id"] for d in dt} - image_rank.keys()
    if missing:
        raise ValueError(f"detections name image ids that the ground truth lacks, e.g. {sorted(missing, key=str)[:5]}")
    gts = _ground_truth_arrays(gt["annotations"], image_rank, category_rank)
    dts = _detection_arrays(dt, image_rank, category_rank)
    precision, recall = _evaluate(gts, dts, len(category_ids))
    stats = dict(zip(STAT_NAMES, _summarize(precision, recall)))
    class_precision = precision[:, :, :, 0]
    stats["per_class"] = {cid: _mean_valid(class_precision[:, :, k]) for k, cid in enumerate(category_ids)}
    return stats


def box_ap(gt_boxes: np.ndarray, gt_classes: np.ndarray, gt_images: np.ndarray, boxes: np.ndarray,
           scores: np.ndarray, classes: np.ndarray, images: np.ndarray, num_classes: int, max_det: int = 100
           ) -> np.ndarray:
    """COCO AP per class and IoU threshold, (K, T), from xyxy arrays (no crowd; -1 for classes without GT).

    The same engine as `coco_map` (all areas, at most `max_det` detections per image and class), for the validator.
    """
    def xywh(xyxy: np.ndarray) -> np.ndarray:
        xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        return np.concatenate((xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]), 1)

    gt_xywh, dt_xywh = xywh(gt_boxes), xywh(boxes)
    gts = {"image": gt_images.astype(np.int64), "category": gt_classes.astype(np.int64), "box": gt_xywh,
           "area": gt_xywh[:, 2] * gt_xywh[:, 3], "crowd": np.zeros(len(gt_xywh), dtype=bool)}
    dts = {"image": images.astype(np.int64), "category": classes.astype(np.int64), "box": dt_xywh,
           "area": dt_xywh[:, 2] * dt_xywh[:, 3], "score": scores.astype(np.float64)}
    precision = _evaluate(gts, dts, num_classes, (1, 10, max_det))[0][:, :, :, 0]  # (T, R, K)
    return np.where(precision.min(1) > -1, precision.mean(1), -1.0).T


def _read_json(source):
    if isinstance(source, (str, Path)):
        with open(source) as f:
            return json.load(f)
    return source


def _ground_truth_arrays(annotations: list, image_rank: dict, category_rank: dict) -> dict[str, np.ndarray]:
    kept = [a for a in annotations if a["image_id"] in image_rank and a["category_id"] in category_rank]
    boxes = _boxes(kept)
    return {"image": _column(kept, "image_id", np.int64, image_rank),
            "category": _column(kept, "category_id", np.int64, category_rank),
            "box": boxes,
            "area": np.array([a.get("area", b[2] * b[3]) for a, b in zip(kept, boxes)], dtype=np.float64),
            "crowd": np.array([bool(a.get("iscrowd", 0)) for a in kept], dtype=bool)}


def _detection_arrays(results: list, image_rank: dict, category_rank: dict) -> dict[str, np.ndarray]:
    kept = [d for d in results if d["category_id"] in category_rank]
    boxes = _boxes(kept)
    return {"image": _column(kept, "image_id", np.int64, image_rank),
            "category": _column(kept, "category_id", np.int64, category_rank),
            "box": boxes, "area": boxes[:, 2] * boxes[:, 3], "score": _column(kept, "score", np.float64)}


def _column(records: list, key: str, dtype: type, lookup: Optional[dict] = None) -> np.ndarray:
    """One field of every record as an array (through `lookup` when given)."""
    values = map(itemgetter(key), records)
    return np.fromiter(values if lookup is None else map(lookup.__getitem__, values), dtype, len(records))


def _boxes(records: list) -> np.ndarray:
    """The (n, 4) float64 "bbox" fields of the records."""
    flat = chain.from_iterable(map(itemgetter("bbox"), records))
    return np.fromiter(flat, np.float64, 4 * len(records)).reshape(-1, 4)


def box_iou_xywh(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of aligned (..., 4) xywh boxes, float64, as pycocotools computes it (crowd: divide by the det's area)."""
    w = np.minimum(dt[..., 2] + dt[..., 0], gt[..., 2] + gt[..., 0]) - np.maximum(dt[..., 0], gt[..., 0])
    h = np.minimum(dt[..., 3] + dt[..., 1], gt[..., 3] + gt[..., 1]) - np.maximum(dt[..., 1], gt[..., 1])
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    dt_area = dt[..., 2] * dt[..., 3]
    union = np.where(crowd, dt_area, dt_area + gt[..., 2] * gt[..., 3] - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(inter > 0, inter / union, 0.0)


def _evaluate(gts: dict, dts: dict, num_categories: int, max_dets: tuple = MAX_DETS
              ) -> tuple[np.ndarray, np.ndarray]:
    """Match and accumulate -> precision (T, R, K, A) at max_dets[-1] and recall (T, K, A, M), -1 without GT."""
    num_images = int(max(gts["image"].max(initial=-1), dts["image"].max(initial=-1))) + 1
    gt_pair = gts["category"] * num_images + gts["image"]
    dt_pair = dts["category"] * num_images + dts["image"]
    order = np.lexsort((np.arange(len(dt_pair)), -dts["score"], dt_pair))  # pair, then best first (stable)
    _, starts, counts = np.unique(dt_pair[order], return_index=True, return_counts=True)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - np.repeat(starts, counts)
    top = rank < max_dets[-1]
    dts = {key: value[top] for key, value in dts.items()}
    dt_pair, rank = dt_pair[top], rank[top]
    matched, ignored = match_detections(gts, gt_pair, dts, dt_pair, rank)
    return accumulate(gts, dts, rank, matched, ignored, num_categories, max_dets)


def match_detections(gts: dict, gt_pair: np.ndarray, dts: dict, dt_pair: np.ndarray, rank: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Greedy COCO matching -> matched, ignored: (A, T, num_dets) bools.

    Only a detection with IoU >= 0.5 with some ground truth of its (image, category) pair can match. Such
    detections of all pairs advance together, the best of each pair first, one detection per pair and step.
    """
    num_areas, num_thresholds = len(AREA_RANGES), len(IOU_THRESHOLDS)
    matched = np.zeros((num_areas, num_thresholds, len(rank)), dtype=bool)
    to_ignored = np.zeros_like(matched)
    contested = np.flatnonzero(np.isin(dt_pair, gt_pair))
    pairs, pair_of_det = np.unique(dt_pair[contested], return_inverse=True)
    gt_order = np.argsort(gt_pair, kind="stable")
    gt_starts = np.searchsorted(gt_pair[gt_order], pairs)
    gt_counts = np.searchsorted(gt_pair[gt_order], pairs, side="right") - gt_starts
    width = max(int(gt_counts.max(initial=0)), 1)
    slot = np.arange(width)
    valid_gt = slot < gt_counts[:, None]  # (P, G): padded slots point at a dummy row
    padded_order = np.append(gt_order, len(gt_order))
    gt_index = padded_order[np.where(valid_gt, gt_starts[:, None] + slot, len(gt_order))]
    gt_box = np.concatenate((gts["box"], np.zeros((1, 4))))[gt_index]
    gt_crowd = np.append(gts["crowd"], False)[gt_index]
    gt_area = np.append(gts["area"], 0.0)[gt_index]
    out_of_range = (gt_area < AREA_RANGES[:, None, None, 0]) | (gt_area > AREA_RANGES[:, None, None, 1])
    gt_ignored = (gt_crowd | out_of_range)[:, None]  # (A, 1, P, G)
    thresholds = IOU_THRESHOLDS[None, :, None, None]

    ious = np.where(valid_gt[pair_of_det], box_iou_xywh(dts["box"][contested, None], gt_box[pair_of_det],
                                                        gt_crowd[pair_of_det]), -1.0)  # (D, G)
    viable = (ious >= IOU_THRESHOLDS[0]).any(-1)
    contested, pair_of_det, ious = contested[viable], pair_of_det[viable], ious[viable]
    by_pair = np.lexsort((rank[contested], pair_of_det))
    step = np.empty(len(by_pair), dtype=np.int64)
    step[by_pair] = np.arange(len(by_pair)) - np.searchsorted(pair_of_det[by_pair], pair_of_det[by_pair])
    by_step = np.argsort(step, kind="stable")
    contested, pair_of_det, ious = contested[by_step], pair_of_det[by_step], ious[by_step]
    step_bounds = np.searchsorted(step[by_step], np.arange(int(step.max(initial=-1)) + 2))

    taken = np.zeros((num_areas, num_thresholds, len(pairs), width), dtype=bool)
    for first, last in zip(step_bounds[:-1], step_bounds[1:]):
        det = contested[first:last]
        p = pair_of_det[first:last]
        iou = ious[first:last]
        usable = ~(taken[:, :, p] & ~gt_crowd[p]) & (iou >= thresholds)
        usable &= valid_gt[p]
        ignored_gt = gt_ignored[:, :, p]
        found_real = (usable & ~ignored_gt).any(-1)
        found, chosen = _last_best(iou, usable & (~ignored_gt | ~found_real[..., None]))  # real GT first
        a, t, j = np.nonzero(found)
        taken[a, t, p[j], chosen[a, t, j]] = True
        matched[:, :, det] = found
        to_ignored[:, :, det] = found & ~found_real
    det_outside = (dts["area"] < AREA_RANGES[:, None, 0]) | (dts["area"] > AREA_RANGES[:, None, 1])  # (A, D)
    ignored = to_ignored | (~matched & det_outside[:, None])
    return matched, ignored


def _last_best(iou: np.ndarray, usable: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of (..., G): is any slot usable, and the last usable slot with the highest IoU."""
    masked = np.where(usable, iou, -np.inf)
    best = masked.max(-1, keepdims=True)
    hits = usable & (masked == best)
    last = hits.shape[-1] - 1 - np.argmax(hits[..., ::-1], -1)
    return usable.any(-1), last


def accumulate(gts: dict, dts: dict, rank: np.ndarray, matched: np.ndarray, ignored: np.ndarray,
               num_categories: int, max_dets: tuple = MAX_DETS) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' accumulate(): precision (T, R, K, A) at max_dets[-1] and recall (T, K, A, M).

    Per (area, threshold, category) the detections are ranked by score (ties: image, then rank in the image).
    Precision only rises at true positives, so the monotone precision curve and its values at the recall
    thresholds are computed from the true positives alone: the first detection reaching recall threshold r is
    the c_r-th true positive, c_r being the least count with c_r / npos >= r.
    """
    num_areas, num_thresholds, num_recalls = len(AREA_RANGES), len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)
    num_rows, num_groups = num_areas * num_thresholds, num_areas * num_thresholds * num_categories
    in_range = (gts["area"] >= AREA_RANGES[:, None, 0]) & (gts["area"] <= AREA_RANGES[:, None, 1]) & ~gts["crowd"]
    positives = np.stack([np.bincount(gts["category"][keep], minlength=num_categories) for keep in in_range])  # (A,K)
    has_gt = np.broadcast_to((positives > 0)[:, None], (num_areas, num_thresholds, num_categories))

    order = np.lexsort((rank, dts["image"], -dts["score"], dts["category"]))
    category = dts["category"][order]
    category_start = np.searchsorted(category, np.arange(num_categories))
    counted = ~ignored[:, :, order].reshape(num_rows, -1)
    row, position = np.nonzero(matched[:, :, order].reshape(num_rows, -1) & counted)  # true positives, ranked
    group = row * num_categories + category[position]  # (area, threshold, category), non-decreasing
    group_size = np.bincount(group, minlength=num_groups)
    group_start = np.cumsum(group_size) - group_size

    recall = np.empty((num_areas, num_thresholds, num_categories, len(max_dets)))
    for m, max_det in enumerate(max_dets):
        found = np.bincount(group[rank[order[position]] < max_det], minlength=num_groups)
        with np.errstate(divide="ignore", invalid="ignore"):
            recall[..., m] = found.reshape(has_gt.shape) / positives[:, None]

    true_positives = np.arange(len(group)) - group_start[group] + 1
    counted_so_far = np.cumsum(counted, 1, dtype=np.int64)
    counted_before = np.concatenate((np.zeros((num_rows, 1), dtype=np.int64), counted_so_far), 1)[:, category_start]
    false_positives = counted_so_far[row, position] - counted_before[row, category[position]] - true_positives
    tp, fp = true_positives.astype(np.float64), false_positives.astype(np.float64)
    precision_at_hits = np.append(tp / (fp + tp + np.spacing(1)), 0.0)

    hit_needed = np.maximum(_least_counts(positives), 1)[:, None]  # (A, 1, K, R); recall 0 -> the first hit
    hit_index = np.minimum(hit_needed - 1, group_size.reshape(has_gt.shape)[..., None]).reshape(num_groups, -1)
    reached = hit_index < group_size[:, None]
    pieces = np.maximum.reduceat(precision_at_hits, (group_start[:, None] + hit_index).ravel()).reshape(reached.shape)
    envelope = np.maximum.accumulate(np.where(reached, pieces, 0.0)[:, ::-1], 1)[:, ::-1]  # max over later hits
    precision = np.where(reached, envelope, 0.0).reshape(has_gt.shape + (num_recalls,))
    precision = np.where(has_gt[..., None], precision, -1.0).transpose(1, 3, 2, 0)
    recall = np.where(has_gt[..., None], recall, -1.0).transpose(1, 2, 0, 3)
    return precision, recall


def _least_counts(positives: np.ndarray) -> np.ndarray:
    """(A, K) ground-truth counts -> (A, K, R) least integer c with c / npos >= recall threshold (float division)."""
    npos = np.maximum(positives, 1)[..., None].astype(np.float64)
    count = np.ceil(RECALL_THRESHOLDS * npos)
    count = np.where((count >= 1) & ((count - 1) / npos >= RECALL_THRESHOLDS), count - 1, count)
    count = np.where(count / npos < RECALL_THRESHOLDS, count + 1, count)
    return count.astype(np.int64)


def _summarize(precision: np.ndarray, recall: np.ndarray) -> list[float]:
    """The 12 numbers of COCOeval.summarize() (area index: 0 all, 1 small, 2 medium, 3 large)."""
    def ap(area: int, threshold: float = None) -> float:
        p = precision[..., area]
        return _mean_valid(p if threshold is None else p[np.isclose(IOU_THRESHOLDS, threshold)])

    def ar(area: int, m: int) -> float:
        return _mean_valid(recall[..., area, m])

    return [ap(0), ap(0, 0.5), ap(0, 0.75), ap(1), ap(2), ap(3),
            ar(0, 0), ar(0, 1), ar(0, 2), ar(1, 2), ar(2, 2), ar(3, 2)]


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else -1.0
