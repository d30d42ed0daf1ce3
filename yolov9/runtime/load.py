"""`load_model(source)`: the one place that decides what a model source is.

A source is a model object, a Backend, a bundled config name or model YAML (a new model), a checkpoint (.pt /
.pth: ours or official, loaded safely) or an exported file (.onnx; an OpenVINO IR .xml or its folder; .tflite).
Trainable sources give a `DetectionModel`; exported files give a `Backend`, which can predict and validate but not
train, export or describe its layers.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

import torch

from yolov9.cfg import is_model_config
from yolov9.errors import ConfigError, YOLOv9Error
from yolov9.models.detection_model import DetectionModel, build_model
from yolov9.runtime.backend import Backend
from yolov9.runtime.torch_backend import TorchBackend

CHECKPOINT_SUFFIXES = (".pt", ".pth")
EXPORTED_SUFFIXES = (".onnx", ".xml", ".tflite")

ModelSource = Union[str, Path, DetectionModel, Backend]


def load_model(source: ModelSource, nc: Optional[int] = None, seed: int = 0,
               device: Union[str, torch.device] = "cpu") -> Union[DetectionModel, Backend]:
    """The model a source names: DetectionModel for configs and checkpoints, Backend for exported files.

    `nc` and `seed` apply to new models built from a config; `device` to exported files.
    """
    if isinstance(source, (DetectionModel, Backend)):
        return source
    if not isinstance(source, (str, Path)):
        raise YOLOv9Error(f"a model source must be a path, a config name or a model, not {type(source).__name__}")
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix in EXPORTED_SUFFIXES or (path.is_dir() and any(path.glob("*.xml"))):
        return _exported_backend(path, suffix, device)
    if suffix in CHECKPOINT_SUFFIXES:
        from yolov9.io.checkpoint import load

        model = load(path)
        model.source = str(path)
        return model
    if is_model_config(source):
        return build_model(source, nc=nc, seed=seed)
    if path.exists():
        raise YOLOv9Error(f"{path}: not a model (expected a checkpoint {'/'.join(CHECKPOINT_SUFFIXES)}, an exported "
                          f"{'/'.join(EXPORTED_SUFFIXES)} file, an OpenVINO model folder or a model YAML)")
    raise ConfigError(f"{source}: no such file, and not a bundled model config (see `yolov9 info --help`)")


def _exported_backend(path: Path, suffix: str, device: Union[str, torch.device]) -> Backend:
    """The runtime of an exported file: ONNX Runtime, OpenVINO (.xml or its folder) or LiteRT (.tflite)."""
    if suffix == ".onnx":
        from yolov9.runtime.onnx_backend import OnnxBackend

        return OnnxBackend(path, device)
    if suffix == ".tflite":
        from yolov9.runtime.tflite_backend import TFLiteBackend

        return TFLiteBackend(path, device)
    from yolov9.runtime.openvino_backend import OpenVinoBackend

    return OpenVinoBackend(path, device)


def load_backend(source: ModelSource, device: Union[str, torch.device] = "cpu", half: bool = False) -> Backend:
    """A Backend for any source: trainable models run as a prepared TorchBackend."""
    model = load_model(source, device=device)
    return model if isinstance(model, Backend) else TorchBackend(model, device, half)


def require_trainable(model: Any, action: str) -> DetectionModel:
    """`model` if it is a trainable DetectionModel, else one clear error saying why `action` cannot run."""
    if isinstance(model, DetectionModel):
        return model
    where = getattr(model, "source", "this model")
    kind = getattr(model, "format", "") or type(model).__name__
    raise YOLOv9Error(f"{where}: an exported {kind} model can predict and validate, but cannot {action}; "
                      "use the .pt checkpoint or a model config")
