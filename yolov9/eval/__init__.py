"""Evaluation: COCO mAP (same numbers as pycocotools), the evaluator interface and the box evaluator, the runner
that feeds them, reporting. `validate()` (which assembles them for a model) is `yolov9.engine.validator.validate`."""
from yolov9.eval.coco import CocoMatching, coco_map, evaluate_arrays
from yolov9.ops.nms import non_max_suppression

__all__ = ["CocoMatching", "coco_map", "evaluate_arrays", "non_max_suppression"]
