"""`YOLOv9`: one object for the whole life of a model (build or load, train, validate, predict, export).

Each method is a thin call into the engine that does the work, so the CLI and the Python API stay mirrors.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, Union

from yolov9.callbacks import Callbacks
from yolov9.models import DetectionModel
from yolov9.runtime import Backend, load_model, require_trainable

DEFAULT_IMGSZ = 640  # val / predict size when the model does not know its own


class YOLOv9:
    """A model: `YOLOv9("yolov9-s")` builds one from a config, `YOLOv9("best.pt")` loads ours or an official
    checkpoint, `YOLOv9("best.onnx")` an exported file (predict and val only).

    A model built from a config starts from the initial weights of `seed` (the same in every process).
    """

    def __init__(self, model: Union[str, Path, DetectionModel, Backend] = "yolov9-t", nc: Optional[int] = None,
                 seed: int = 0):
        self.source = model
        self._model = load_model(model, nc=nc, seed=seed)
        self.callbacks = Callbacks()

    @property
    def model(self) -> DetectionModel:
        """The trainable model (an exported file has none: a clear error says so)."""
        return require_trainable(self._model, "be trained, exported or inspected layer by layer")

    @property
    def backend(self) -> Union[DetectionModel, Backend]:
        """What predict and val run: the model, or the exported file's runtime."""
        return self._model

    @property
    def names(self) -> list[str]:
        return list(self._model.names)

    @property
    def task(self) -> str:
        return getattr(self._model, "task", "detect")

    @property
    def imgsz(self) -> Optional[int]:
        """The image size the model was trained (checkpoint) or exported at, if known: the default of val/predict."""
        size = self._model.imgsz
        return None if size is None else max(size) if isinstance(size, (tuple, list)) else int(size)

    def add_callback(self, event: str, fn: Callable[[Any], None]) -> None:
        """Call `fn(owner)` at `event` of train / val / predict / export (see `yolov9.callbacks.EVENTS`)."""
        self.callbacks.add(event, fn)

    def train(self, data: Union[str, Path], **options: Any) -> dict:
        """Train on a dataset YAML; returns final metrics and the run folder. The model becomes the best EMA."""
        from yolov9.engine.trainer import train

        result = train(require_trainable(self._model, "be trained"), data=data, callbacks=self.callbacks, **options)
        self._model = result["model"]
        return result

    def val(self, data: Union[str, Path], **options: Any) -> dict:
        """Validate on a dataset YAML split; returns the metrics dict."""
        from yolov9.engine.validator import validate

        options.setdefault("imgsz", self.imgsz or DEFAULT_IMGSZ)
        return validate(self._model, data=data, callbacks=self.callbacks, **options)

    def predict(self, source: Any, **options: Any) -> list:
        """Run on an image, folder, glob, list file, video or webcam; returns a Results per image."""
        from yolov9.engine.predictor import predict

        options.setdefault("imgsz", self.imgsz or DEFAULT_IMGSZ)
        return predict(self._model, source, callbacks=self.callbacks, **options)

    def track(self, source: Any, **options: Any) -> list:
        """Track objects in a video, stream, webcam or folder of frames (ByteTrack); returns a Results per frame
        with the track ids in `boxes.id` (see `yolov9.engine.tracking.track_stream` for the options)."""
        from yolov9.engine.tracking import track

        options.setdefault("imgsz", self.imgsz or DEFAULT_IMGSZ)
        return track(self._model, source, callbacks=self.callbacks, **options)

    def export(self, format: str = "onnx", **options: Any) -> Path:
        """Export the stripped, fused model (e.g. ONNX, optionally with NMS or INT8); returns the file path."""
        from yolov9.export.exporter import export

        return export(require_trainable(self._model, "be exported again"), format=format, callbacks=self.callbacks,
                      **options)

    def info(self, imgsz: int = 640) -> dict:
        return self.model.info(imgsz)
