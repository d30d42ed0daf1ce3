"""Dataset inspection: scan every split with statistics (`yolov9 data check`) and draw augmented samples
(`yolov9 data show`)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Union

import cv2
import numpy as np

from yolov9.io.atomic import atomic_write_bytes
from yolov9.data.loaders import DataConfig, build_train_loader, resolve_config, scan
from yolov9.data.scan import ScanResult, format_report
from yolov9.errors import DatasetError


def label_statistics(result: ScanResult, names: list[str]) -> str:
    """Instances and images per class, boxes per image, and box sizes (fraction of the image side)."""
    classes = result.labels[:, 0].astype(np.int64)
    image_of_box = np.repeat(np.arange(len(result)), np.diff(result.offsets))
    instances = np.bincount(classes, minlength=len(names))
    images = np.array([len(np.unique(image_of_box[classes == c])) for c in range(len(names))])
    lines = [f"{'class':<20}{'images':>8}{'instances':>11}"]
    lines += [f"{name[:19]:<20}{images[c]:>8}{instances[c]:>11}" for c, name in enumerate(names)]
    per_image = np.diff(result.offsets)
    if len(result.labels):
        wh = result.labels[:, 3:5]
        lines.append(f"boxes per image: mean {per_image.mean():.2f}, max {per_image.max()}; box w/h (fraction): "
                     f"median {np.median(wh[:, 0]):.3f}/{np.median(wh[:, 1]):.3f}, "
                     f"min {wh[:, 0].min():.4f}/{wh[:, 1].min():.4f}")
    return "\n".join(lines)


def check_dataset(data: DataConfig, strict: bool = False, max_lines: int = 50) -> dict[str, ScanResult]:
    """Scan every split present; prints the report, the summary table and label statistics per split."""
    cfg = resolve_config(data)
    results = {}
    for split in ("train", "val", "test"):
        if cfg[split]:
            results[split] = scan(cfg, split, strict=strict, verbose=False)
            print(format_report(results[split], split, max_lines=max_lines))
            print(label_statistics(results[split], cfg["names"]))
    if not results:
        raise DatasetError(f"{cfg['yaml_file'] or 'data config'}: every split is empty")
    return results


def draw_boxes(image: np.ndarray, targets: np.ndarray, names: list[str]) -> np.ndarray:
    """Draw (n, 5) [cls, cx, cy, w, h] normalised boxes with class names on an RGB image (copy)."""
    image = np.ascontiguousarray(image).copy()
    h, w = image.shape[:2]
    for cls, cx, cy, bw, bh in targets.tolist():
        color = tuple(int(v) for v in np.random.default_rng(int(cls)).integers(64, 256, 3))
        p1 = (int((cx - bw / 2) * w), int((cy - bh / 2) * h))
        p2 = (int((cx + bw / 2) * w), int((cy + bh / 2) * h))
        cv2.rectangle(image, p1, p2, color, 2)
        cv2.putText(image, names[int(cls)], (p1[0], max(p1[1] - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, 1)
    return image


def show_samples(data: DataConfig, out: Union[str, Path] = "samples.png", n: int = 16, imgsz: int = 640,
                 split: str = "train", seed: int = 0, hyp: Optional[dict] = None) -> Path:
    """Write a grid PNG of n augmented training samples with their boxes drawn; returns its path."""
    cfg = resolve_config(data)
    loader = build_train_loader(cfg, imgsz, batch=n, hyp=hyp, workers=0, seed=seed, split=split)
    batch = next(iter(loader))
    images = batch["images"].permute(0, 2, 3, 1).numpy()
    targets = batch["targets"].numpy()
    tiles = [draw_boxes(images[i], targets[targets[:, 0] == i, 1:], cfg["names"]) for i in range(len(images))]
    cols = math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    grid = np.full((rows * imgsz, cols * imgsz, 3), 255, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        grid[r * imgsz:(r + 1) * imgsz, c * imgsz:(c + 1) * imgsz] = tile
    ok, png = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    if not ok:
        raise DatasetError(f"{out}: could not encode the preview as PNG")
    atomic_write_bytes(out, png.tobytes())
    return Path(out)
