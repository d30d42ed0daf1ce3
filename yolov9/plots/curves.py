"""Validation figures: precision-recall and F1-confidence curves, confusion matrix (PNG files)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from yolov9.plots.figures import pyplot, save_figure


def _axes():
    return pyplot().subplots(figsize=(7, 5), tight_layout=True)


def plot_pr_curve(curves: dict, names: list[str], path: Path) -> Path:
    """Precision vs recall per class (thin) and their mean (thick), from the evaluator's curves."""
    fig, ax = _axes()
    seen = curves["positives"] > 0
    for c in np.nonzero(seen)[0]:
        ax.plot(curves["r_curve"][c], curves["p_curve"][c], linewidth=0.5, label=f"{names[c]} {curves['ap'][c, 0]:.3f}")
    if seen.any():
        ax.plot(curves["r_curve"][seen].mean(0), curves["p_curve"][seen].mean(0), linewidth=2, color="blue",
                label=f"all classes {curves['ap'][seen, 0].mean():.3f} mAP@0.5")
    ax.set(xlabel="Recall", ylabel="Precision", xlim=(0, 1), ylim=(0, 1), title="Precision-Recall")
    ax.legend(loc="lower left", fontsize=7)
    return save_figure(fig, path, dpi=150)


def plot_f1_curve(curves: dict, names: list[str], path: Path) -> Path:
    """F1 vs confidence per class and the mean."""
    fig, ax = _axes()
    seen = curves["positives"] > 0
    for c in np.nonzero(seen)[0]:
        ax.plot(curves["grid"], curves["f1_curve"][c], linewidth=0.5, label=names[c])
    if seen.any():
        ax.plot(curves["grid"], curves["f1_curve"][seen].mean(0), linewidth=2, color="blue", label="all classes")
    ax.set(xlabel="Confidence", ylabel="F1", xlim=(0, 1), ylim=(0, 1), title="F1-Confidence")
    ax.legend(loc="lower left", fontsize=7)
    return save_figure(fig, path, dpi=150)


def plot_confusion_matrix(matrix: np.ndarray, names: list[str], path: Path) -> Path:
    """Column-normalised confusion matrix (columns: true class, rows: predicted; last = background)."""
    fig, ax = _axes()
    normalised = matrix / np.maximum(matrix.sum(0, keepdims=True), 1)
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    labels = list(names) + ["background"]
    if len(labels) <= 30:
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set(xlabel="True", ylabel="Predicted", title="Confusion matrix (normalised)")
    fig.colorbar(image, ax=ax)
    return save_figure(fig, path, dpi=150)
