"""Evaluation: COCO mAP (same numbers as pycocotools), NMS re-export, and the validator."""
from yolov9.eval.coco import coco_map
from yolov9.ops.nms import non_max_suppression

__all__ = ["coco_map", "non_max_suppression", "validate"]


def __getattr__(name: str):
    if name == "validate":  # lazy: the validator pulls in the data pipeline
        from yolov9.eval.validator import validate

        return validate
    raise AttributeError(name)
