"""Helpers for the train tests: a tiny model config and a small generated YOLO dataset with real boxes."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import yaml

from yolov9.cfg import load_model_config

COLORS = ((230, 40, 40), (40, 200, 60))  # class 0 red squares, class 1 green squares (RGB)


def tiny_config(branches: int = 2) -> dict:
    """yolov9-t (2 branches) or gelan-t (1 branch) rows with width x0.25 and depth x0.33."""
    cfg = load_model_config("yolov9-t" if branches == 2 else "gelan-t")
    cfg.update(width_multiple=0.25, depth_multiple=0.33)
    return cfg


def write_dataset(root: Path, n_images: int = 8, size: int = 96, seed: int = 0,
                  background: tuple[int, int] = (90, 140), train_copies: int = 1) -> Path:
    """`n_images` images with 1-2 squares each (random class and place) on noise in `background`, YOLO labels,
    data.yaml. val = those images; train = the same images, each `train_copies` times (more batches per epoch)."""
    rng = np.random.default_rng(seed)
    images, labels = root / "images", root / "labels"
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    for i in range(n_images):
        image = rng.integers(*background, (size, size, 3), dtype=np.uint8)
        lines = []
        for _ in range(1 + i % 2):
            cls = int(rng.integers(0, 2))
            w, h = rng.integers(size // 4, size // 2, 2)
            x0, y0 = rng.integers(0, size - w), rng.integers(0, size - h)
            image[y0:y0 + h, x0:x0 + w] = COLORS[cls]
            lines.append(f"{cls} {(x0 + w / 2) / size:.6f} {(y0 + h / 2) / size:.6f} {w / size:.6f} {h / size:.6f}")
        cv2.imwrite(str(images / f"im{i}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        (labels / f"im{i}.txt").write_text("\n".join(lines) + "\n")
    train = "images" if train_copies == 1 else copy_images(root, "images", "train/images", train_copies)
    data = root / "data.yaml"
    data.write_text(yaml.safe_dump({"path": str(root), "train": train, "val": "images", "names": ["red", "green"]}))
    return data


def copy_images(root: Path, source: str, target: str, copies: int) -> str:
    """Every image of `root/source` (and its label) `copies` times into `root/target`; returns `target`."""
    for image in sorted((root / source).iterdir()):
        label = root / "labels" / image.relative_to(root / "images").with_suffix(".txt")
        for k in range(copies):
            name = f"{image.stem}_{k}"
            out = root / target / f"{name}{image.suffix}"
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(image, out)
            out_label = root / target.replace("images", "labels", 1) / f"{name}.txt"
            out_label.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(label, out_label)
    return target
