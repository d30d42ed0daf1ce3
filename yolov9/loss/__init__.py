"""Training objective: task-aligned assignment and the detection loss over any number of head branches."""
from yolov9.loss.assigner import TaskAlignedAssigner
from yolov9.loss.detection_loss import DetectionLoss

__all__ = ["DetectionLoss", "TaskAlignedAssigner"]
