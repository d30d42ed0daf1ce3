"""Dataset inspection: scan every split with statistics (`yolov9 data check`) and draw augmented samples
(`yolov9 data show`)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import numpy as np

from yolov9.cfg.hyp import Hyperparameters
from yolov9.data.loaders import DataConfig, build_train_loader, resolve_config, scan
from yolov9.data.scan import ScanResult, format_report
from yolov9.errors import DatasetError
from yolov9.plots.training import save_batch_plot


def label_statistics(result: ScanResult, names: list[str]) -> str:
    """Instances and images per class, boxes per image, box sizes (fraction of the image side) and how many rows
    have polygons."""
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
    with_polygon = int(result.polygons.has_polygon.sum())
    several = int((result.polygons.ring_counts > 1).sum())
    lines.append(f"rows with polygons: {with_polygon} of {len(result.labels)} ({several} with several polygons, "
                 f"{len(result.polygons.rings) - 1} polygons in all); rows without one are boxes only")
    return "\n".join(lines)


def check_dataset(data: DataConfig, strict: bool = False, max_lines: int = 50) -> dict[str, ScanResult]:
    """Scan every split present; prints the report, the summary table and label statistics per split."""
    cfg = resolve_config(data)
    results, listed = {}, set()
    for split in ("train", "val", "test"):
        if cfg[split]:
            results[split] = scan(cfg, split, strict=strict, verbose=False)
            print(format_report(results[split], split, max_lines=max_lines, listed=listed))
            print(label_statistics(results[split], cfg["names"]))
    if not results:
        raise DatasetError(f"{cfg['yaml_file'] or 'data config'}: every split is empty")
    return results


def show_samples(data: DataConfig, out: Union[str, Path] = "samples.png", n: int = 16, imgsz: int = 640,
                 split: str = "train", seed: int = 0, hyp: Optional[Hyperparameters] = None) -> Path:
    """Write a grid image (PNG or JPEG by suffix) of n augmented training samples with their boxes and class
    names drawn; returns its path."""
    cfg = resolve_config(data)
    loader = build_train_loader(cfg, imgsz, batch=n, hyp=hyp, workers=0, seed=seed, split=split)
    batch = next(iter(loader))
    return save_batch_plot(batch["images"], batch["targets"], out, names=cfg["names"], max_images=n)
