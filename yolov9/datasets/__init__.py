"""Builders of the small datasets we ship or generate: "trees" (real, bundled) and "digits-on-photos" (generated)."""
from yolov9.datasets.digits import generate_digits
from yolov9.datasets.trees import build_trees

__all__ = ["build_trees", "generate_digits"]
