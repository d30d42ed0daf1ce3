"""Eval speed, ours vs a reference measured in the same run (interleaved, best of `--repeats`).

1. NMS of one image's (4 + 80, 30,000) prediction (conf 0.001, max_det 300; uniform and clustered boxes, IoU 0.7
   and 0.45) vs OpenCV's cv2.dnn.NMSBoxesBatched on the same candidates, capped at max_det after NMS (its top_k
   would cap before), timed once as it takes seconds (goal for ours: < 20 ms per image).
2. COCO mAP: our coco_map vs pycocotools' evaluate() + accumulate(), 5,000 images x 100 detections, 80 classes
   (goal: >= 10x faster). `--quick`: 500 images.
3. COCO segm mAP, the same comparison on masks: the case of 2 with every box replaced by its inscribed 24-gon,
   polygons for the ground truth (as in COCO's annotations) and compressed RLE for the detections (as in a results
   JSON), 640 x 480 images (goal: >= 2x faster). 1,000 images (`--quick`: 200).
Usage: OMP_NUM_THREADS=2 .venv/bin/python benchmarks/eval_speed.py [--quick]
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import time

import cv2
import numpy as np
import torch
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from yolov9.eval import coco_map, non_max_suppression


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


def inscribed_polygon(box: list, corners: int = 24) -> list[float]:
    """The flat [x1, y1, ...] polygon inscribed in an xywh box's ellipse."""
    angle = np.linspace(0, 2 * np.pi, corners, endpoint=False)
    x, y, w, h = box
    return np.stack((x + w / 2 * (1 + np.cos(angle)), y + h / 2 * (1 + np.sin(angle))), 1).ravel().tolist()


def make_segm_case(images: int, dets_per_image: int, classes: int) -> tuple[dict, list]:
    """make_case with masks: polygon ground truth, compressed-RLE detections (rasterised by pycocotools)."""
    gt, detections = make_case(images, dets_per_image, classes)
    for annotation in gt["annotations"]:
        annotation["segmentation"] = [inscribed_polygon(annotation["bbox"])]
    for detection in detections:
        rle = coco_mask.frPyObjects([inscribed_polygon(detection.pop("bbox"))], 480, 640)[0]
        detection["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
    return gt, detections


def time_pycocotools(gt: dict, detections: list, iou_type: str = "bbox") -> tuple[float, float]:
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)  # segm evaluation replaces the polygons by RLE in place
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(detections))
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        start = time.perf_counter()
        evaluator.evaluate()
        evaluator.accumulate()
        elapsed = time.perf_counter() - start
        evaluator.summarize()
    return elapsed, float(evaluator.stats[0])


def time_ours(gt: dict, detections: list, iou_type: str = "bbox") -> tuple[float, float]:
    start = time.perf_counter()
    result = coco_map(gt, detections, iou_type)
    return time.perf_counter() - start, result["AP"]


def nms_case(clustered: bool, boxes: int = 30_000, classes: int = 80, seed: int = 0) -> torch.Tensor:
    """(1, 4 + classes, boxes) prediction, one random class score per box; clustered: around 60 objects."""
    rng = np.random.default_rng(seed)
    pred = np.zeros((4 + classes, boxes), np.float32)
    if clustered:
        objects = rng.integers(0, 60, boxes)
        pred[:2] = (rng.uniform(0, 640, (60, 2))[objects] + rng.normal(0, 8, (boxes, 2))).T
        pred[2:4] = (rng.uniform(20, 200, (60, 2))[objects] * rng.uniform(0.8, 1.2, (boxes, 2))).T
    else:
        pred[:2] = rng.uniform(0, 640, (2, boxes))
        pred[2:4] = rng.uniform(10, 200, (2, boxes))
    pred[4 + rng.integers(0, classes, boxes), np.arange(boxes)] = rng.uniform(0.01, 1, boxes)
    return torch.from_numpy(pred)[None]


def time_opencv_nms(pred: torch.Tensor, conf: float, iou: float, max_det: int) -> tuple[float, int]:
    start = time.perf_counter()
    values = pred[0].numpy()
    scores = values[4:].max(0)
    chosen = np.flatnonzero(scores > conf)
    xywh = values[:4, chosen].T.astype(np.float64)
    xywh[:, :2] -= xywh[:, 2:] / 2
    classes = values[4:, chosen].argmax(0)
    kept = cv2.dnn.NMSBoxesBatched(xywh, scores[chosen], classes, conf, iou)[:max_det]  # OpenCV's top_k cuts before NMS
    return time.perf_counter() - start, len(kept)


def time_our_nms(pred: torch.Tensor, conf: float, iou: float, max_det: int) -> tuple[float, int]:
    start = time.perf_counter()
    kept = non_max_suppression(pred, conf, iou, max_det=max_det)[0]
    return time.perf_counter() - start, len(kept)


def nms_report(repeats: int) -> None:
    for clustered in (False, True):
        pred = nms_case(clustered)
        for iou in (0.7, 0.45):
            ours = [time_our_nms(pred, 0.001, iou, 300) for _ in range(repeats)]
            theirs = time_opencv_nms(pred, 0.001, iou, 300)  # seconds per call: once is enough
            ours_s = min(t for t, _ in ours)
            print(f"NMS 30,000 candidates, {'clustered' if clustered else 'uniform'} boxes, IoU {iou}: "
                  f"ours {ours_s * 1000:.1f} ms ({ours[0][1]} kept)   OpenCV NMSBoxesBatched {theirs[0] * 1000:.0f} ms "
                  f"({theirs[1]} kept)   ratio {theirs[0] / ours_s:.0f}x")


def map_report(gt: dict, detections: list, repeats: int, iou_type: str) -> None:
    ours_times, theirs_times = [], []
    for _ in range(repeats):  # interleaved, best of each
        t, ours_ap = time_ours(gt, detections, iou_type)
        ours_times.append(t)
        t, their_ap = time_pycocotools(gt, detections, iou_type)
        theirs_times.append(t)
    ours, theirs = min(ours_times), min(theirs_times)
    print(f"{iou_type} AP: ours {ours_ap:.6f}  pycocotools {their_ap:.6f}")
    print(f"coco_map ({iou_type}): {ours:.2f} s   pycocotools evaluate+accumulate: {theirs:.2f} s   "
          f"ratio {theirs / ours:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="500 (segm: 200) images instead of 5,000 (1,000)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    nms_report(max(args.repeats, 5))
    images = 500 if args.quick else 5000
    gt, detections = make_case(images, 100, 80)
    print(f"{images} images x 100 detections, 80 classes, {len(gt['annotations'])} GT boxes")
    map_report(gt, detections, args.repeats, "bbox")
    images = 200 if args.quick else 1000
    gt, detections = make_segm_case(images, 100, 80)
    print(f"{images} images x 100 mask detections (RLE), 80 classes, {len(gt['annotations'])} GT polygons")
    map_report(gt, detections, args.repeats, "segm")


if __name__ == "__main__":
    main()
