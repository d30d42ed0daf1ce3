"""Synthetic datasets for the data tests: images with filled rectangles and their exact YOLO / COCO labels."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np


def draw_image(rng: np.random.Generator, h: int, w: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An RGB image with n filled rectangles; returns (image, classes (n,), xyxy pixel boxes (n, 4) exclusive)."""
    image = np.full((h, w, 3), 40, np.uint8)
    boxes, classes = [], []
    for _ in range(n):
        bw, bh = rng.integers(w // 8, w // 3), rng.integers(h // 8, h // 3)
        x1, y1 = rng.integers(0, w - bw), rng.integers(0, h - bh)
        image[y1:y1 + bh, x1:x1 + bw] = rng.integers(90, 255, 3)
        boxes.append([x1, y1, x1 + bw, y1 + bh])
        classes.append(rng.integers(0, 3))
    return image, np.array(classes), np.array(boxes, np.float64).reshape(-1, 4)


def yolo_lines(classes: np.ndarray, boxes: np.ndarray, h: int, w: int) -> str:
    xywh = np.stack(((boxes[:, 0] + boxes[:, 2]) / 2 / w, (boxes[:, 1] + boxes[:, 3]) / 2 / h,
                     (boxes[:, 2] - boxes[:, 0]) / w, (boxes[:, 3] - boxes[:, 1]) / h), 1)
    return "".join(f"{c} {x:.8f} {y:.8f} {bw:.8f} {bh:.8f}\n" for c, (x, y, bw, bh) in zip(classes, xywh))


def make_dataset(root: Path, n: int = 8, seed: int = 0, sizes=((96, 128), (128, 96), (80, 80)),
                 ext: str = ".png", coco: bool = True) -> Path:
    """`root/images/{train,val}`, `root/labels/...`, `root/data.yaml` and (coco) `root/annotations/instances_val.json`
    describing the same val images. Returns the data.yaml path."""
    rng = np.random.default_rng(seed)
    coco_images, coco_annotations = [], []
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            h, w = sizes[i % len(sizes)]
            image, classes, boxes = draw_image(rng, h, w, 1 + i % 3)
            name = f"{split}_{i:03d}{ext}"
            cv2.imwrite(str(root / "images" / split / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            (root / "labels" / split / name).with_suffix(".txt").write_text(yolo_lines(classes, boxes, h, w))
            if split == "val":
                coco_images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
                for c, (x1, y1, x2, y2) in zip(classes, boxes):
                    coco_annotations.append({"id": len(coco_annotations) + 1, "image_id": i + 1,
                                             "category_id": [1, 3, 7][c], "iscrowd": 0, "area": (x2 - x1) * (y2 - y1),
                                             "bbox": [x1, y1, x2 - x1, y2 - y1]})
    if coco:
        (root / "annotations").mkdir(exist_ok=True)
        categories = [{"id": cid, "name": name} for cid, name in zip([1, 3, 7], ["a", "b", "c"])]
        (root / "annotations" / "instances_val.json").write_text(json.dumps(
            {"images": coco_images, "annotations": coco_annotations, "categories": categories}))
    yaml = root / "data.yaml"
    yaml.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames: [a, b, c]\n")
    return yaml
