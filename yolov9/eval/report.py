"""Reporting of validation results: the printed table, the COCO results JSON and the validation figures."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from yolov9.io.atomic import atomic_write_bytes

HEADER = ("Class", "Images", "Instances", "P", "R", "mAP50", "mAP50-95")


def print_table(metrics: dict[str, Any], groups: Sequence[tuple[str, str]] = (("", ""),)) -> None:
    """The official val table: an `all` row, then one row per class with labels.

    groups: (title, metric key prefix) per column group, e.g. (("Box", ""), ("Mask", "mask/")) for segmentation;
    a single untitled group for detection.
    """
    titled = any(title for title, _ in groups)
    if titled:
        print(f"{'':>44}" + "".join(f"{title:^44}" for title, _ in groups))
    print("{:>22}{:>11}{:>11}".format(*HEADER[:3]) + "".join("{:>11}{:>11}{:>11}{:>11}".format(*HEADER[3:])
                                                              for _ in groups))

    def cells(values: dict) -> str:
        return "".join(f"{values[k]:>11.3f}" for k in ("precision", "recall", "mAP50", "mAP50-95"))

    print(f"{'all':>22}{metrics['images']:>11}{metrics['instances']:>11}"
          + "".join(cells({k: metrics[prefix + k] for k in ("precision", "recall", "mAP50", "mAP50-95")})
                    for _, prefix in groups))
    for name, values in metrics["per_class"].items():
        print(f"{name:>22}{metrics['images']:>11}{values['instances']:>11}"
              + "".join(cells(metrics[prefix + "per_class"][name] if prefix else values) for _, prefix in groups))


def print_speed(speed: dict[str, float]) -> None:
    print(f"Speed: {speed['preprocess']:.1f} ms pre-process, {speed['inference']:.1f} ms inference, "
          f"{speed['nms']:.1f} ms NMS per image")


def print_val_loss(loss: Any, item_names: Sequence[str]) -> None:
    """The validation loss items of every head branch: loss (branches, items), auxiliary branches first."""
    rows = loss.reshape(-1, len(item_names)).tolist()
    for b, values in enumerate(rows):
        branch = "main" if b == len(rows) - 1 else f"aux{b}"
        print(f"val loss {branch}: " + " ".join(f"{name} {v:.4g}" for name, v in zip(item_names, values)))


def write_json(rows: list[dict], path: Path, verbose: bool = True) -> Path:
    """COCO results rows -> `path` (written atomically)."""
    atomic_write_bytes(path, json.dumps(rows).encode())
    if verbose:
        print(f"Saved {len(rows)} predictions to {path}")
    return Path(path)


def save_plots(metrics: dict[str, Any], names: Sequence[str], save_dir: Path, prefix: str = "") -> None:
    """PR and F1 curves and the confusion matrix of one evaluator's results into `save_dir`."""
    from yolov9.plots.curves import plot_confusion_matrix, plot_f1_curve, plot_pr_curve

    save_dir.mkdir(parents=True, exist_ok=True)
    tag = prefix.replace("/", "_")
    plot_pr_curve(metrics[prefix + "curves"], list(names), save_dir / f"{tag}PR_curve.png")
    plot_f1_curve(metrics[prefix + "curves"], list(names), save_dir / f"{tag}F1_curve.png")
    if prefix + "confusion_matrix" in metrics:
        plot_confusion_matrix(metrics[prefix + "confusion_matrix"], list(names), save_dir / "confusion_matrix.png")
