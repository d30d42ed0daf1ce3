"""yolov9: train, evaluate and deploy YOLOv9 (GELAN + PGI) models."""
from yolov9.api import YOLOv9
from yolov9.errors import YOLOv9Error
from yolov9.io.checkpoint import load
from yolov9.io.transfer import load_pretrained
from yolov9.models import DetectionModel, build_model, strip_auxiliary
from yolov9.version import __version__

__all__ = ["YOLOv9", "YOLOv9Error", "DetectionModel", "build_model", "load", "load_pretrained", "strip_auxiliary",
           "__version__"]
