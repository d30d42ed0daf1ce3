"""Training plots (PNG): loss and metric curves from results.csv, label statistics, first training batches."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence, Union

import cv2
import numpy as np
import torch
from torch import nn

from yolov9.errors import YOLOv9Error
from yolov9.io.atomic import atomic_write_bytes
from yolov9.ops.boxes import denormalize_boxes, xywh2xyxy
from yolov9.plots.drawing import class_colour, draw_detections, draw_masks
from yolov9.plots.figures import pyplot, save_figure


def plot_results(rows: Sequence[dict], path: Union[str, Path]) -> None:
    """One panel per results.csv column (losses, metrics, learning rates) against the epoch."""
    plt = pyplot()
    columns = [c for c in rows[0] if c != "epoch"] if rows else []
    if not columns:
        return
    cols = min(5, len(columns))
    fig, axes = plt.subplots(math.ceil(len(columns) / cols), cols, figsize=(3.2 * cols, 2.6 * math.ceil(len(columns) / cols)),
                             squeeze=False)
    epochs = [r["epoch"] + 1 for r in rows]
    for ax, column in zip(axes.flat, columns):
        ax.plot(epochs, [r[column] for r in rows], marker=".", linewidth=1.5)
        ax.set_title(column, fontsize=9)
    for ax in list(axes.flat)[len(columns):]:
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path)


def plot_labels(labels: np.ndarray, names: Sequence[str], path: Union[str, Path]) -> None:
    """labels (n, 5) [class, cx, cy, w, h] normalised: instances per class, box centres, box sizes."""
    plt = pyplot()
    fig, (ax_cls, ax_xy, ax_wh) = plt.subplots(1, 3, figsize=(12, 3.6))
    counts = np.bincount(labels[:, 0].astype(int), minlength=len(names)) if len(labels) else np.zeros(len(names))
    ax_cls.bar(range(len(names)), counts, color=[np.array(class_colour(i)[::-1]) / 255 for i in range(len(names))])
    ax_cls.set_xticks(range(len(names)), names if len(names) <= 30 else [""] * len(names), rotation=90, fontsize=7)
    ax_cls.set_ylabel("instances")
    ax_xy.hist2d(labels[:, 1], labels[:, 2], bins=40, range=[[0, 1], [0, 1]], cmap="Blues")
    ax_xy.set(xlabel="x", ylabel="y", title="box centres")
    ax_wh.hist2d(labels[:, 3], labels[:, 4], bins=40, range=[[0, 1], [0, 1]], cmap="Blues")
    ax_wh.set(xlabel="width", ylabel="height", title="box sizes")
    fig.tight_layout()
    save_figure(fig, path)


def draw_batch(images: torch.Tensor, targets: torch.Tensor, names: Optional[Sequence[str]] = None,
               max_images: int = 16, masks: Optional[torch.Tensor] = None) -> np.ndarray:
    """A BGR grid of a batch (B, 3, H, W) uint8 RGB with its targets (n, 6) [index, cls, cx, cy, w, h] drawn
    (class colours; class names too when `names` is given; `masks` (n, h, w), one binary mask per target row at
    any resolution, blended in)."""
    images = images[:max_images].cpu().numpy()
    n, _, h, w = images.shape
    grid = math.ceil(math.sqrt(n))
    canvas = np.full((math.ceil(n / grid) * h, grid * w, 3), 255, np.uint8)
    targets = targets.cpu().numpy()
    if masks is not None:
        masks = nn.functional.interpolate(masks[None].float().cpu(), size=(h, w), mode="nearest")[0].numpy() > 0
    for i in range(n):
        y0, x0 = (i // grid) * h, (i % grid) * w
        tile = np.ascontiguousarray(images[i].transpose(1, 2, 0)[..., ::-1])
        rows = targets[targets[:, 0] == i]
        if masks is not None:
            tile = draw_masks(tile, masks[targets[:, 0] == i], rows[:, 1])
        boxes = denormalize_boxes(xywh2xyxy(rows[:, 2:6]), (h, w))
        if names is None:
            for cls, box in zip(rows[:, 1].astype(int), boxes.round().astype(int)):
                cv2.rectangle(tile, tuple(box[:2].tolist()), tuple(box[2:].tolist()), class_colour(cls), 1)
        else:
            tile = draw_detections(tile, boxes, None, rows[:, 1], names, line_width=1)
        canvas[y0:y0 + h, x0:x0 + w] = tile
        cv2.rectangle(canvas, (x0, y0), (x0 + w - 1, y0 + h - 1), (255, 255, 255), 1)
    return canvas


def save_batch_plot(images: torch.Tensor, targets: torch.Tensor, path: Union[str, Path],
                    names: Optional[Sequence[str]] = None, max_images: int = 16,
                    masks: Optional[torch.Tensor] = None) -> Path:
    """The batch grid as JPEG (or PNG, by the suffix of `path`), written atomically."""
    ok, encoded = cv2.imencode(Path(path).suffix or ".jpg", draw_batch(images, targets, names, max_images, masks))
    if not ok:
        raise YOLOv9Error(f"{path}: could not encode the batch image")
    return atomic_write_bytes(path, encoded.tobytes())
