"""COCO mAP speed: our vectorised coco_map vs pycocotools' evaluate() + accumulate(), same data, same run.

Default: 5,000 images x 100 detections, 80 classes (goal: >= 10x faster). `--quick`: 500 images.
Usage: .venv/bin/python benchmarks/eval_speed.py [--quick]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import time

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from yolov9.eval import coco_map


def make_case(images: int, dets_per_image: int, classes: int, seed: int = 0) -> tuple[dict, list]:
    """About 7 objects per image (COCO's average) and `dets_per_image` detections around and between them."""
    rng = np.random.default_rng(seed)
    gt = {"images": [{"id": i, "width": 640, "height": 480} for i in range(images)],
          "categories": [{"id": c, "name": str(c)} for c in range(classes)], "annotations": []}
    detections = []
    for image_id in range(images):
        objects = rng.integers(1, 14)
        wh = np.exp(rng.uniform(np.log(8), np.log(300), (objects, 2)))
        xy = rng.uniform(0, 1, (objects, 2)) * (np.array([640, 480]) - wh)
        boxes = np.concatenate((xy, wh), 1)
        labels = rng.integers(0, classes, objects)
        for box, label in zip(boxes, labels):
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": image_id,
                                      "category_id": int(label), "bbox": box.tolist(),
                                      "area": float(box[2] * box[3]), "iscrowd": 0})
        source = rng.integers(0, objects, dets_per_image)
        noisy = boxes[source] + rng.normal(0, 0.2, (dets_per_image, 4)) * np.tile(boxes[source, 2:], 2)
        noisy[:, 2:] = np.maximum(noisy[:, 2:], 1)
        random_labels = rng.integers(0, classes, dets_per_image)
        det_labels = np.where(rng.random(dets_per_image) < 0.5, labels[source], random_labels)
        for box, label, score in zip(noisy, det_labels, rng.random(dets_per_image)):
            detections.append({"image_id": image_id, "category_id": int(label), "bbox": box.tolist(),
                               "score": float(score)})
    return gt, detections


def time_pycocotools(gt: dict, detections: list) -> tuple[float, float]:
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(detections)
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        start = time.perf_counter()
        evaluator.evaluate()
        evaluator.accumulate()
        elapsed = time.perf_counter() - start
        evaluator.summarize()
    return elapsed, float(evaluator.stats[0])


def time_ours(gt: dict, detections: list) -> tuple[float, float]:
    start = time.perf_counter()
    result = coco_map(gt, detections)
    return time.perf_counter() - start, result["AP"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="500 images instead of 5,000")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    images = 500 if args.quick else 5000
    gt, detections = make_case(images, 100, 80)
    print(f"{images} images x 100 detections, 80 classes, {len(gt['annotations'])} GT boxes")
    ours_times, theirs_times = [], []
    for _ in range(args.repeats):  # interleaved, best of each
        t, ours_ap = time_ours(gt, detections)
        ours_times.append(t)
        t, their_ap = time_pycocotools(gt, detections)
        theirs_times.append(t)
    ours, theirs = min(ours_times), min(theirs_times)
    print(f"AP: ours {ours_ap:.6f}  pycocotools {their_ap:.6f}")
    print(f"coco_map: {ours:.2f} s   pycocotools evaluate+accumulate: {theirs:.2f} s   ratio {theirs / ours:.1f}x")


if __name__ == "__main__":
    main()
