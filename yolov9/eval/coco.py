"""COCO mAP (bbox and segm), vectorised in numpy, with the exact rules of pycocotools' COCOeval.

Matching rule (COCOeval.evaluateImg), per (image, category): detections in score order (at most `max_det`
each; ties keep input order) are matched greedily to the unmatched ground truth with the highest IoU >= t (ties:
the later one), non-ignored ground truth first; crowd ground truth is ignored, may be matched many times and its
IoU divides by the detection's area; ground truth outside an area range is ignored there, and so are unmatched
detections outside it. A detection matched to ignored ground truth is ignored (neither true nor false positive).
Accumulation: 101-point interpolated precision made monotone; categories without ground truth score -1 and are
left out of the means. IoU is box IoU (bbox) or mask IoU on run-length masks (segm, `yolov9.ops.rle`).

`coco_map` scores COCO JSON; `evaluate_arrays` scores arrays (the validator) and also returns the per-detection
outcome of that one matching (area "all"), from which precision / recall curves follow.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np

from yolov9.errors import YOLOv9Error
from yolov9.ops.boxes import xyxy2ltwh
from yolov9.ops.rle import RunLengths, pair_iou

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, 101, endpoint=True)
AREA_RANGES = np.array([[0, 1e5 ** 2], [0, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]])  # all, S, M, L
MAX_DETS = (1, 10, 100)
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
IOU_TYPES = ("bbox", "segm")

PairIoU = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (det rows, gt rows, gt crowd) -> IoU


def coco_map(ground_truth: Union[dict, str, Path], detections: Union[list, str, Path], iou_type: str = "bbox"
             ) -> dict[str, Any]:
    """COCO annotation dict (or JSON path) + results list (or path) -> the 12 COCO stats and per-class AP.

    iou_type "bbox" scores the `bbox` fields, "segm" the `segmentation` fields (polygons, RLE, crowd RLE).
    Returns {"AP": .., "AP50": .., ..., "ARl": .., "per_class": {category_id: AP@[.5:.95] or -1 without GT}}.
    """
    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {IOU_TYPES}, not {iou_type!r}")
    gt = _read_json(ground_truth)
    dt = _read_json(detections)
    image_ids = sorted({image["id"] for image in gt["images"]})
    category_ids = sorted({category["id"] for category in gt["categories"]})
    image_rank = {image_id: i for i, image_id in enumerate(image_ids)}
    category_rank = {category_id: k for k, category_id in enumerate(category_ids)}
    missing = {d["image_id"] for d in dt} - image_rank.keys()
    if missing:
        raise ValueError(f"detections name image ids that the ground truth lacks, e.g. {sorted(missing, key=str)[:5]}")
    gt_kept = [a for a in gt["annotations"] if a["image_id"] in image_rank and a["category_id"] in category_rank]
    dt_kept = [d for d in dt if d["category_id"] in category_rank]
    gts = _records(gt_kept, image_rank, category_rank)
    dts = _records(dt_kept, image_rank, category_rank)
    dts["score"] = _column(dt_kept, "score", np.float64)
    gts["crowd"] = np.array([bool(a.get("iscrowd", 0)) for a in gt_kept], dtype=bool)
    if iou_type == "bbox":
        gt_box, dt_box = _boxes(gt_kept), _boxes(dt_kept)
        gts["area"] = np.array([a.get("area", b[2] * b[3]) for a, b in zip(gt_kept, gt_box)], dtype=np.float64)
        dts["area"] = dt_box[:, 2] * dt_box[:, 3]
        iou = box_pairs_iou(dt_box, gt_box)
    else:
        sizes = {image["id"]: (image.get("height", 0), image.get("width", 0)) for image in gt["images"]}
        gt_masks = RunLengths.from_coco(_segmentations(gt_kept, "ground truth"), _image_sizes(gt_kept, sizes))
        dt_masks = RunLengths.from_coco(_segmentations(dt_kept, "detection"), _image_sizes(dt_kept, sizes))
        gt_area = gt_masks.areas
        gts["area"] = np.array([a.get("area", m) for a, m in zip(gt_kept, gt_area.tolist())], dtype=np.float64)
        dts["area"] = _detection_mask_areas(dt, dt_kept, dt_masks)
        iou = mask_pairs_iou(dt_masks, gt_masks)
    precision, recall = _evaluate(gts, dts, len(category_ids), iou)
    stats = dict(zip(STAT_NAMES, _summarize(precision, recall)))
    class_precision = precision[:, :, :, 0]
    stats["per_class"] = {cid: _mean_valid(class_precision[:, :, k]) for k, cid in enumerate(category_ids)}
    return stats


@dataclass(frozen=True)
class CocoMatching:
    """One COCO matching of array inputs (area "all"), see `evaluate_arrays`.

    ap: (K, T) AP per class and IoU threshold (IOU_THRESHOLDS), -1 for classes without ground truth;
    true_positive: (D, T) bool per input detection, matched to non-crowd ground truth at threshold t;
    ignored: (D, T) bool, not counted at all (matched to crowd ground truth, or beyond `max_det` in its
    image and class); every other detection is a false positive; gt_counts: (K,) non-crowd ground truth.
    """

    ap: np.ndarray
    true_positive: np.ndarray
    ignored: np.ndarray
    gt_counts: np.ndarray


def evaluate_arrays(gt_regions: Union[np.ndarray, RunLengths], gt_classes: np.ndarray, gt_images: np.ndarray,
                    regions: Union[np.ndarray, RunLengths], scores: np.ndarray, classes: np.ndarray,
                    images: np.ndarray, num_classes: int, gt_crowd: Optional[np.ndarray] = None,
                    max_det: int = 100) -> CocoMatching:
    """COCO's matching and AP (area "all", at most `max_det` detections per image and class) of array inputs.

    Regions are (n, 4) xyxy boxes (box IoU) or `RunLengths` masks (mask IoU), the same kind for both sides.
    Classes are 0..num_classes-1; images are integers whose order breaks score ties (pycocotools: image ids).
    """
    gt_crowd = np.zeros(len(gt_classes), bool) if gt_crowd is None else np.asarray(gt_crowd, bool)
    if isinstance(gt_regions, RunLengths) != isinstance(regions, RunLengths):
        raise TypeError("ground truth and detections must both be boxes or both be RunLengths masks")
    if isinstance(regions, RunLengths):
        iou, gt_area, area = mask_pairs_iou(regions, gt_regions), gt_regions.areas, regions.areas
    else:
        gt_xywh, dt_xywh = (xyxy2ltwh(np.asarray(r, np.float64).reshape(-1, 4)) for r in (gt_regions, regions))
        iou = box_pairs_iou(dt_xywh, gt_xywh)
        gt_area, area = gt_xywh[:, 2] * gt_xywh[:, 3], dt_xywh[:, 2] * dt_xywh[:, 3]
    gts = {"image": np.asarray(gt_images, np.int64), "category": np.asarray(gt_classes, np.int64),
           "area": np.asarray(gt_area, np.float64), "crowd": gt_crowd}
    dts = {"image": np.asarray(images, np.int64), "category": np.asarray(classes, np.int64),
           "area": np.asarray(area, np.float64), "score": np.asarray(scores, np.float64),
           "index": np.arange(len(scores))}
    area_all = AREA_RANGES[:1]
    kept, rank, matched, ignored = _match(gts, dts, iou, max_det, area_all)
    precision = accumulate(gts, kept, rank, matched, ignored, num_classes, (max_det,), area_all)[0][:, :, :, 0]
    true_positive = np.zeros((len(scores), len(IOU_THRESHOLDS)), dtype=bool)
    not_counted = np.ones_like(true_positive)
    true_positive[kept["index"]] = (matched & ~ignored)[0].T
    not_counted[kept["index"]] = ignored[0].T
    ap = np.where(precision.min(1) > -1, precision.mean(1), -1.0).T  # (T, R, K) -> (K, T)
    return CocoMatching(ap, true_positive, not_counted, np.bincount(gts["category"][~gt_crowd], minlength=num_classes))


def box_pairs_iou(dt_xywh: np.ndarray, gt_xywh: np.ndarray) -> PairIoU:
    """IoU of (det row, gt row) pairs of xywh boxes."""
    return lambda d, g, crowd: box_iou_xywh(dt_xywh[d], gt_xywh[g], crowd)


def mask_pairs_iou(dt_masks: RunLengths, gt_masks: RunLengths) -> PairIoU:
    """IoU of (det row, gt row) pairs of masks; pairs that cannot reach the lowest threshold are not measured."""
    return lambda d, g, crowd: pair_iou(dt_masks, d, gt_masks, g, crowd, min_iou=IOU_THRESHOLDS[0])


def _read_json(source):
    if isinstance(source, (str, Path)):
        with open(source) as f:
            return json.load(f)
    return source


def _records(records: list, image_rank: dict, category_rank: dict) -> dict[str, np.ndarray]:
    """Image and category ranks of COCO records, and their row index."""
    return {"image": _column(records, "image_id", np.int64, image_rank),
            "category": _column(records, "category_id", np.int64, category_rank),
            "index": np.arange(len(records))}


def _column(records: list, key: str, dtype: type, lookup: Optional[dict] = None) -> np.ndarray:
    """One field of every record as an array (through `lookup` when given)."""
    values = map(itemgetter(key), records)
    return np.fromiter(values if lookup is None else map(lookup.__getitem__, values), dtype, len(records))


def _boxes(records: list) -> np.ndarray:
    """The (n, 4) float64 "bbox" fields of the records."""
    flat = chain.from_iterable(map(itemgetter("bbox"), records))
    return np.fromiter(flat, np.float64, 4 * len(records)).reshape(-1, 4)


def _segmentations(records: list, what: str) -> list:
    """The `segmentation` fields; a detection with only a bbox gets its box as a polygon (as pycocotools)."""
    out = []
    for k, record in enumerate(records):
        if "segmentation" in record:
            out.append(record["segmentation"])
        elif what == "detection" and record.get("bbox"):
            x, y, w, h = record["bbox"]
            out.append([[x, y, x, y + h, x + w, y + h, x + w, y]])
        else:
            raise YOLOv9Error(f"segm evaluation: {what} {record.get('id', k)} (image {record.get('image_id')}) "
                              "has no 'segmentation'")
    return out


def _image_sizes(records: list, sizes: dict) -> np.ndarray:
    """(n, 2) (height, width) of each record's image (polygons are rasterised at that size)."""
    return np.array([sizes[r["image_id"]] for r in records], dtype=np.int64).reshape(-1, 2)


def _detection_mask_areas(results: list, kept: list, masks: RunLengths) -> np.ndarray:
    """Detection areas as pycocotools' loadRes sets them: the bbox's w * h when the first result has a bbox,
    else the mask's pixel count."""
    if results and results[0].get("bbox"):
        boxes = _boxes(kept)
        return boxes[:, 2] * boxes[:, 3]
    return masks.areas.astype(np.float64)


def box_iou_xywh(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of aligned (..., 4) xywh boxes, float64, as pycocotools computes it (crowd: divide by the det's area)."""
    w = np.minimum(dt[..., 2] + dt[..., 0], gt[..., 2] + gt[..., 0]) - np.maximum(dt[..., 0], gt[..., 0])
    h = np.minimum(dt[..., 3] + dt[..., 1], gt[..., 3] + gt[..., 1]) - np.maximum(dt[..., 1], gt[..., 1])
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    dt_area = dt[..., 2] * dt[..., 3]
    union = np.where(crowd, dt_area, dt_area + gt[..., 2] * gt[..., 3] - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(inter > 0, inter / union, 0.0)


def _evaluate(gts: dict, dts: dict, num_categories: int, pair_iou: PairIoU, max_dets: tuple = MAX_DETS
              ) -> tuple[np.ndarray, np.ndarray]:
    """Match and accumulate -> precision (T, R, K, A) at max_dets[-1] and recall (T, K, A, M), -1 without GT."""
    kept, rank, matched, ignored = _match(gts, dts, pair_iou, max_dets[-1], AREA_RANGES)
    return accumulate(gts, kept, rank, matched, ignored, num_categories, max_dets, AREA_RANGES)


def _match(gts: dict, dts: dict, pair_iou: PairIoU, max_det: int, area_ranges: np.ndarray
           ) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """The best `max_det` detections of each (image, category) -> those detections, their rank in the pair and
    matched, ignored: (A, T, kept) bools."""
    num_images = int(max(gts["image"].max(initial=-1), dts["image"].max(initial=-1))) + 1
    gt_pair = gts["category"] * num_images + gts["image"]
    dt_pair = dts["category"] * num_images + dts["image"]
    order = np.lexsort((np.arange(len(dt_pair)), -dts["score"], dt_pair))  # pair, then best first (stable)
    _, starts, counts = np.unique(dt_pair[order], return_index=True, return_counts=True)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - np.repeat(starts, counts)
    top = rank < max_det
    dts = {key: value[top] for key, value in dts.items()}
    dt_pair, rank = dt_pair[top], rank[top]
    matched, ignored = match_detections(gts, gt_pair, dts, dt_pair, rank, pair_iou, area_ranges)
    return dts, rank, matched, ignored


def match_detections(gts: dict, gt_pair: np.ndarray, dts: dict, dt_pair: np.ndarray, rank: np.ndarray,
                     pair_iou: PairIoU, area_ranges: np.ndarray = AREA_RANGES) -> tuple[np.ndarray, np.ndarray]:
    """Greedy COCO matching -> matched, ignored: (A, T, num_dets) bools.

    Only a detection with IoU >= 0.5 with some ground truth of its (image, category) pair can match. Such
    detections of all pairs advance together, the best of each pair first, one detection per pair and step.
    """
    num_areas, num_thresholds = len(area_ranges), len(IOU_THRESHOLDS)
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
    gt_crowd = np.append(gts["crowd"], False)[gt_index]
    gt_area = np.append(gts["area"], 0.0)[gt_index]
    out_of_range = (gt_area < area_ranges[:, None, None, 0]) | (gt_area > area_ranges[:, None, None, 1])
    gt_ignored = (gt_crowd | out_of_range)[:, None]  # (A, 1, P, G)
    thresholds = IOU_THRESHOLDS[None, :, None, None]

    ious = np.full((len(contested), width), -1.0)  # (D, G)
    row, column = np.nonzero(valid_gt[pair_of_det])
    ious[row, column] = pair_iou(dts["index"][contested[row]], gt_index[pair_of_det[row], column],
                                 gt_crowd[pair_of_det[row], column])
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
    det_outside = (dts["area"] < area_ranges[:, None, 0]) | (dts["area"] > area_ranges[:, None, 1])  # (A, D)
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
               num_categories: int, max_dets: tuple = MAX_DETS, area_ranges: np.ndarray = AREA_RANGES
               ) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' accumulate(): precision (T, R, K, A) at max_dets[-1] and recall (T, K, A, M).

    Per (area, threshold, category) the detections are ranked by score (ties: image, then rank in the image).
    Precision only rises at true positives, so the monotone precision curve and its values at the recall
    thresholds are computed from the true positives alone: the first detection reaching recall threshold r is
    the c_r-th true positive, c_r being the least count with c_r / npos >= r.
    """
    num_areas, num_thresholds, num_recalls = len(area_ranges), len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)
    num_rows, num_groups = num_areas * num_thresholds, num_areas * num_thresholds * num_categories
    in_range = (gts["area"] >= area_ranges[:, None, 0]) & (gts["area"] <= area_ranges[:, None, 1]) & ~gts["crowd"]
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
