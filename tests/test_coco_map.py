"""coco_map against pycocotools on generated cases and on a real COCO file."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from yolov9.eval import coco_map
from yolov9.eval.coco import STAT_NAMES

ASSETS = Path(__file__).parent / "assets"


def pycocotools_stats(gt: dict, dt: list) -> tuple[np.ndarray, np.ndarray]:
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = json.loads(json.dumps(gt))
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(json.loads(json.dumps(dt))) if dt else COCO()
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats, evaluator.eval["precision"]


def generated_case(seed: int, images: int = 220, classes: int = 10) -> tuple[dict, list]:
    """Random GT (crowd boxes, empty images, a class without GT) and noisy detections with duplicates."""
    rng = np.random.default_rng(seed)
    gt = {"images": [{"id": i + 1, "width": 640, "height": 480} for i in range(images)],
          "categories": [{"id": c * 3 + 1, "name": f"c{c}"} for c in range(classes)], "annotations": []}
    detections = []
    for image_id in range(1, images + 1):
        for _ in range(rng.integers(0, 8) if image_id % 7 else 0):  # every 7th image is empty
            w, h = np.exp(rng.uniform(np.log(4), np.log(300), 2))
            box = [float(rng.uniform(0, 640 - w)), float(rng.uniform(0, 480 - h)), float(w), float(h)]
            category = int(rng.integers(0, classes - 1)) * 3 + 1  # the last class never has GT
            crowd = int(rng.random() < 0.08)
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": image_id, "category_id": category,
                                      "bbox": box, "area": box[2] * box[3] * rng.uniform(0.6, 1.0),
                                      "iscrowd": crowd})
            for _ in range(rng.integers(0, 4)):  # hits, near misses and duplicates of the same object
                jitter = rng.normal(0, 0.15, 4) * [w, h, w, h]
                noisy = [box[0] + jitter[0], box[1] + jitter[1], max(w + jitter[2], 1.0), max(h + jitter[3], 1.0)]
                label = category if rng.random() < 0.85 else int(rng.integers(0, classes)) * 3 + 1
                detections.append({"image_id": image_id, "category_id": label, "bbox": [float(v) for v in noisy],
                                   "score": float(np.round(rng.random(), 2))})  # rounded: ties happen
        for _ in range(rng.integers(0, 6)):  # background false positives
            w, h = rng.uniform(2, 200, 2)
            detections.append({"image_id": image_id, "category_id": int(rng.integers(0, classes)) * 3 + 1,
                               "bbox": [float(rng.uniform(0, 600)), float(rng.uniform(0, 440)), float(w), float(h)],
                               "score": float(rng.random())})
    crowded = detections[:1] * 120  # more than 100 detections of one (image, category)
    return gt, detections + [dict(d, score=d["score"] * 0.5 + 0.01 * i) for i, d in enumerate(crowded)]


def assert_same_as_pycocotools(gt: dict, dt: list) -> None:
    ours = coco_map(gt, dt)
    stats, precision = pycocotools_stats(gt, dt)
    np.testing.assert_allclose([ours[name] for name in STAT_NAMES], stats, atol=1e-6, rtol=0)
    category_ids = sorted(c["id"] for c in gt["categories"])
    for k, category_id in enumerate(category_ids):
        p = precision[:, :, k, 0, -1]
        expected = p[p > -1].mean() if (p > -1).any() else -1.0
        assert ours["per_class"][category_id] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generated_cases_match_pycocotools(seed):
    assert_same_as_pycocotools(*generated_case(seed))


def test_no_detections_and_empty_ground_truth():
    gt, dt = generated_case(3, images=30)
    assert_same_as_pycocotools(gt, dt[:1])
    empty = dict(gt, annotations=[])
    assert coco_map(empty, dt)["AP"] == -1.0


def sahi_terrain2() -> Path:
    for candidate in (ASSETS / "sahi_terrain2" / "terrain2_coco.json", ASSETS / "terrain2_coco.json"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError("tests/assets: terrain2_coco.json (from the sahi 0.12.8 sdist) is missing")


@pytest.mark.parametrize("seed", [0, 1])
def test_real_coco_file_with_perturbed_detections(seed):
    gt = json.loads(sahi_terrain2().read_text())
    rng = np.random.default_rng(seed)
    detections = []
    for annotation in gt["annotations"]:
        x, y, w, h = annotation["bbox"]
        for _ in range(rng.integers(1, 4)):
            jitter = rng.normal(0, 0.1, 4) * [w, h, w, h]
            detections.append({"image_id": annotation["image_id"], "category_id": annotation["category_id"],
                               "bbox": [x + jitter[0], y + jitter[1], max(w + jitter[2], 1), max(h + jitter[3], 1)],
                               "score": float(rng.random())})
    assert_same_as_pycocotools(gt, detections)
