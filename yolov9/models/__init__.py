"""Model graph: builder (config -> layers), DetectionModel, FLOP counting, auxiliary-branch stripping."""
from yolov9.models.detection_model import DetectionModel, build_model
from yolov9.models.strip import strip_auxiliary

__all__ = ["DetectionModel", "build_model", "strip_auxiliary"]
