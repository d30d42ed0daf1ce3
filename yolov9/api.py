"""`YOLOv9`: one object for the whole life of a detector (build or load, train, validate, predict, export).

Each method is a thin call into the engine that does the work, so the CLI and the Python API stay mirrors.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

from yolov9.models import DetectionModel, build_model

CHECKPOINT_SUFFIXES = (".pt", ".pth")


class YOLOv9:
    """A detector: `YOLOv9("yolov9-s.yaml")` builds one, `YOLOv9("best.pt")` loads ours or an official file.

    A model built from a config starts from the initial weights of `seed` (the same in every process).
    """

    def __init__(self, model: Union[str, Path, DetectionModel] = "yolov9-t", nc: Optional[int] = None,
                 seed: int = 0):
        self.source = model
        if isinstance(model, DetectionModel):
            self.model = model
        elif Path(str(model)).suffix == ".onnx":
            from yolov9.export.runtime import OnnxBackend

            self.model = OnnxBackend(model)
        elif Path(str(model)).suffix in CHECKPOINT_SUFFIXES:
            from yolov9.io.checkpoint import load

            self.model = load(model)
        else:
            self.model = build_model(model, nc=nc, seed=seed)

    @property
    def names(self) -> list[str]:
        return self.model.names

    def train(self, data: Union[str, Path], **options: Any) -> dict:
        """Train on a dataset YAML; returns final metrics and the run folder. `self.model` becomes the best EMA."""
        from yolov9.engine.trainer import train

        result = train(self.model, data=data, **options)
        self.model = result["model"]
        return result

    def val(self, data: Union[str, Path], **options: Any) -> dict:
        """Validate on a dataset YAML split; returns the metrics dict."""
        from yolov9.eval.validator import validate

        return validate(self.model, data=data, **options)

    def predict(self, source: Any, **options: Any) -> list:
        """Detect objects in an image, folder, glob, list file, video or webcam; returns a Results per image."""
        from yolov9.engine.predictor import predict

        return predict(self.model, source, **options)

    def export(self, format: str = "onnx", **options: Any) -> Path:
        """Export the stripped, fused model (e.g. ONNX, optionally with NMS or INT8); returns the file path."""
        from yolov9.export.exporter import export

        return export(self.model, format=format, **options)

    def info(self, imgsz: int = 640) -> dict:
        return self.model.info(imgsz)
