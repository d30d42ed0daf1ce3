"""Training objectives: task-aligned assignment, the detection loss over any number of head branches and the
instance-segmentation loss built on it."""
from yolov9.loss.assigner import Assignment, TaskAlignedAssigner
from yolov9.loss.detection_loss import DetectionLoss
from yolov9.loss.segmentation_loss import SegmentationLoss

__all__ = ["Assignment", "DetectionLoss", "SegmentationLoss", "TaskAlignedAssigner"]
