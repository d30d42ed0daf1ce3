"""coco_map(iou_type="segm") and evaluate_arrays against pycocotools on generated cases and a real COCO file."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from yolov9.eval import coco_map, evaluate_arrays
from yolov9.eval.coco import IOU_THRESHOLDS, STAT_NAMES
from yolov9.ops.rle import RunLengths, encode

ASSETS = Path(__file__).parent / "assets"


def pycocotools_eval(gt: dict, dt: list, iou_type: str = "segm") -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = json.loads(json.dumps(gt))
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(json.loads(json.dumps(dt))) if dt else COCO()
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def assert_same_as_pycocotools(gt: dict, dt: list) -> None:
    ours = coco_map(gt, dt, iou_type="segm")
    evaluator = pycocotools_eval(gt, dt)
    np.testing.assert_allclose([ours[name] for name in STAT_NAMES], evaluator.stats, atol=1e-6, rtol=0)
    precision = evaluator.eval["precision"]
    for k, category_id in enumerate(sorted(c["id"] for c in gt["categories"])):
        p = precision[:, :, k, 0, -1]
        assert ours["per_class"][category_id] == pytest.approx(p[p > -1].mean() if (p > -1).any() else -1.0, abs=1e-6)


def blob(rng: np.random.Generator, h: int, w: int, centre: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """A (h, w) bool ellipse with a ragged edge."""
    yy, xx = np.mgrid[:h, :w]
    angle = np.arctan2(yy - centre[1], xx - centre[0])
    edge = 1 + 0.15 * np.sin(rng.integers(2, 6) * angle + rng.uniform(0, 6))
    return ((xx - centre[0]) / radii[0]) ** 2 + ((yy - centre[1]) / radii[1]) ** 2 < edge ** 2


def polygon(rng: np.random.Generator, centre: np.ndarray, radii: np.ndarray) -> list[float]:
    """A star-shaped polygon around centre, as COCO's flat [x1, y1, x2, y2, ...]."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, rng.integers(3, 12)))
    scale = rng.uniform(0.5, 1.0, len(angles))
    points = centre + np.stack((np.cos(angles), np.sin(angles)), 1) * radii * scale[:, None]
    return np.round(points, 2).ravel().tolist()


def uncompressed(mask: np.ndarray) -> dict:
    """A crowd-style RLE: {"size", "counts": [clear, set, clear, ...]} in column-major order."""
    flat = np.concatenate(([False], mask.T.ravel(), [False]))
    edges = np.flatnonzero(flat[1:] != flat[:-1])
    bounds = np.concatenate(([0], edges, [mask.size]))
    return {"size": list(mask.shape), "counts": np.diff(bounds).tolist()}


def generated_case(seed: int, images: int = 40, classes: int = 6, with_bbox: bool = True) -> tuple[dict, list]:
    """GT as polygons, compressed RLE and crowd RLE (empty images, a class without GT) and noisy mask detections
    (a class never detected, score ties, more than 100 detections of one image and class)."""
    rng = np.random.default_rng(seed)
    gt = {"images": [], "categories": [{"id": c * 2 + 1, "name": f"c{c}"} for c in range(classes)],
          "annotations": []}
    detections = []
    for image_id in range(1, images + 1):
        h, w = (int(v) for v in rng.integers(60, 260, 2))
        gt["images"].append({"id": image_id, "height": h, "width": w})
        for _ in range(rng.integers(0, 7) if image_id % 6 else 0):  # every 6th image is empty
            centre, radii = rng.uniform(0, 1, 2) * [w, h], np.exp(rng.uniform(np.log(3), np.log(120), 2))
            category = int(rng.integers(0, classes - 1)) * 2 + 1  # the last class never has GT
            kind = rng.choice(["polygon", "rle", "crowd"], p=[0.5, 0.35, 0.15])
            if kind == "polygon":
                parts = [polygon(rng, centre + rng.normal(0, 3, 2), radii) for _ in range(rng.integers(1, 3))]
                segmentation = parts
                mask = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(parts, h, w))).astype(bool)
            else:
                mask = blob(rng, h, w, centre, radii)
                segmentation = uncompressed(mask) if kind == "crowd" else encode(mask[None])[0]
            area = float(mask.sum()) * (rng.uniform(0.7, 1.3) if rng.random() < 0.3 else 1.0)
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": image_id,
                                      "category_id": category, "segmentation": segmentation, "area": area,
                                      "iscrowd": int(kind == "crowd"), "bbox": [0, 0, 1, 1]})
            for _ in range(rng.integers(0, 4)):  # hits, near misses and duplicates
                shifted = np.roll(mask, tuple(int(v) for v in rng.integers(-2, 3, 2)), (0, 1))
                noisy = shifted ^ (rng.random(mask.shape) < 0.02) & blob(rng, h, w, centre, radii * 1.3)
                label = category if rng.random() < 0.85 else int(rng.integers(0, classes - 1)) * 2 + 1
                detections.append(_detection(image_id, label, noisy, float(np.round(rng.random(), 2)), with_bbox))
        for _ in range(rng.integers(0, 5)):  # background false positives (some empty masks)
            radii = np.exp(rng.uniform(np.log(0.3), np.log(40), 2))
            noise = blob(rng, h, w, rng.uniform(0, 1, 2) * [w, h], radii)
            detections.append(_detection(image_id, int(rng.integers(0, classes - 1)) * 2 + 1, noise,
                                         float(rng.random()), with_bbox))
    crowded = [dict(d, score=d["score"] * 0.5 + 0.004 * i) for i, d in enumerate(detections[:1] * 120)]
    return gt, detections + crowded


def _detection(image_id: int, category: int, mask: np.ndarray, score: float, with_bbox: bool) -> dict:
    row = {"image_id": image_id, "category_id": category, "segmentation": encode(mask[None])[0], "score": score}
    if with_bbox:  # then pycocotools takes the detection's area from the bbox
        ys, xs = np.nonzero(mask)
        row["bbox"] = [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1] if len(xs) else \
            [0, 0, 0, 0]
    return row


@pytest.mark.parametrize("seed, with_bbox", [(0, True), (1, False), (2, True)])
def test_generated_cases_match_pycocotools(seed, with_bbox):
    assert_same_as_pycocotools(*generated_case(seed, with_bbox=with_bbox))


def test_no_detections_one_detection_and_no_ground_truth():
    gt, dt = generated_case(3, images=12)
    assert_same_as_pycocotools(gt, dt[:1])
    assert coco_map(gt, [], iou_type="segm")["AP"] == pytest.approx(pycocotools_eval(gt, []).stats[0])
    assert coco_map(dict(gt, annotations=[]), dt, iou_type="segm")["AP"] == -1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_real_coco_polygons_with_perturbed_masks(seed):
    path = ASSETS / "sahi_terrain2" / "terrain2_coco.json"
    gt = json.loads(path.read_text())
    image = {i["id"]: i for i in gt["images"]}
    rng = np.random.default_rng(seed)
    detections = []
    for annotation in gt["annotations"]:
        h, w = image[annotation["image_id"]]["height"], image[annotation["image_id"]]["width"]
        mask = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(annotation["segmentation"], h, w))).astype(bool)
        for _ in range(rng.integers(1, 4)):
            shifted = np.roll(mask, tuple(int(v) for v in rng.integers(-3, 4, 2)), (0, 1))
            detections.append({"image_id": annotation["image_id"], "category_id": annotation["category_id"],
                               "segmentation": encode(shifted[None])[0], "score": float(rng.random())})
    assert_same_as_pycocotools(gt, detections)


def test_evaluate_arrays_masks_equal_pycocotools_area_all():
    """One matching: AP per class and threshold as pycocotools' precision (area all), and the per-detection
    true positive / ignored flags as its evalImgs (dtMatches, dtIgnore) at maxDet."""
    gt, dt = generated_case(4, images=20, with_bbox=False)
    evaluator = pycocotools_eval(gt, dt)
    sizes = {i["id"]: (i["height"], i["width"]) for i in gt["images"]}
    category = {c: k for k, c in enumerate(sorted(c["id"] for c in gt["categories"]))}
    gt_masks = RunLengths.from_coco([a["segmentation"] for a in gt["annotations"]],
                                    [sizes[a["image_id"]] for a in gt["annotations"]])
    dt_masks = RunLengths.from_coco([d["segmentation"] for d in dt], [sizes[d["image_id"]] for d in dt])
    result = evaluate_arrays(gt_masks, [category[a["category_id"]] for a in gt["annotations"]],
                             [a["image_id"] for a in gt["annotations"]], dt_masks, [d["score"] for d in dt],
                             [category[d["category_id"]] for d in dt], [d["image_id"] for d in dt], len(category),
                             gt_crowd=[a["iscrowd"] for a in gt["annotations"]], max_det=100)
    precision = evaluator.eval["precision"][:, :, :, 0, -1]  # (T, R, K)
    expected_ap = np.where((precision > -1).all(1), precision.mean(1), -1.0).T
    np.testing.assert_allclose(result.ap, expected_ap, atol=1e-12)
    expected_tp = np.zeros((len(dt), len(IOU_THRESHOLDS)), bool)
    expected_ignored = np.ones_like(expected_tp)
    for record in evaluator.evalImgs:
        if record is None or record["aRng"] != [0, 1e10]:
            continue
        rows = np.array(record["dtIds"], dtype=np.int64) - 1  # loadRes numbers results 1..D in input order
        expected_tp[rows] = (record["dtMatches"] > 0).T & ~record["dtIgnore"].T
        expected_ignored[rows] = record["dtIgnore"].T
    np.testing.assert_array_equal(result.true_positive, expected_tp)
    np.testing.assert_array_equal(result.ignored, expected_ignored)
    crowd = np.array([a["iscrowd"] for a in gt["annotations"]], bool)
    counts = np.bincount([category[a["category_id"]] for a, c in zip(gt["annotations"], crowd) if not c],
                         minlength=len(category))
    np.testing.assert_array_equal(result.gt_counts, counts)


def test_evaluate_arrays_boxes_and_max_det_cut():
    """Boxes: the same AP as pycocotools' bbox engine; detections beyond max_det per image and class are ignored."""
    rng = np.random.default_rng(5)
    gt_boxes = np.concatenate((rng.uniform(0, 100, (30, 2)), rng.uniform(5, 50, (30, 2))), 1)
    gt_boxes[:, 2:] += gt_boxes[:, :2]
    gt_classes, gt_images = rng.integers(0, 3, 30), rng.integers(0, 4, 30)
    source = rng.integers(0, 30, 200)
    boxes = gt_boxes[source] + rng.normal(0, 3, (200, 4))
    scores, classes, images = rng.random(200), gt_classes[source], gt_images[source]
    result = evaluate_arrays(gt_boxes, gt_classes, gt_images, boxes, scores, classes, images, 4, max_det=5)
    gt = {"images": [{"id": i} for i in range(4)], "categories": [{"id": c} for c in range(4)],
          "annotations": [{"id": k + 1, "image_id": int(i), "category_id": int(c), "iscrowd": 0, "area": 1.0,
                           "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]}
                          for k, (b, c, i) in enumerate(zip(gt_boxes.tolist(), gt_classes, gt_images))]}
    dt = [{"image_id": int(i), "category_id": int(c), "score": float(s), "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]}
          for b, s, c, i in zip(boxes.tolist(), scores, classes, images)]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(dt), "bbox")
        evaluator.params.maxDets = [1, 5]
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"][:, :, :, 0, -1]
    np.testing.assert_allclose(result.ap, np.where((precision > -1).all(1), precision.mean(1), -1.0).T, atol=1e-12)
    assert result.ap[3].tolist() == [-1.0] * len(IOU_THRESHOLDS)  # no GT of class 3
    pair = classes * 4 + images
    rank = np.array([(scores[pair == p] > s).sum() for p, s in zip(pair, scores)])
    assert result.ignored[rank >= 5].all() and not result.true_positive[rank >= 5].any()
    assert not result.ignored[rank < 5].any()  # no crowd here: every kept detection counts
