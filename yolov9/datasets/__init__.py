"""Builders of the small datasets we ship or generate: "trees" and "nuclei" (real, bundled) and "digits-on-photos"
(generated, boxes or masks)."""
from yolov9.datasets.digits import generate_digits
from yolov9.datasets.nuclei import build_nuclei
from yolov9.datasets.trees import build_trees

__all__ = ["build_nuclei", "build_trees", "generate_digits"]
