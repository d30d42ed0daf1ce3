"""LiteRT (TFLite) backend over a .tflite written by `yolov9 export --format tflite`, run by ai-edge-litert.

Our files take one NHWC image (1, H, W, 3) (float32, or int8 for INT8 files: quantized here with the input's
scale and zero point) and give the same outputs as our ONNX export. Their metadata is a `metadata.json` in a zip
archive appended to the flatbuffer (the interpreter ignores trailing bytes). The shape is fixed (see
docs/deploy.md): smaller inputs are padded, batches run image by image.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Union

import numpy as np
import torch

from yolov9.errors import YOLOv9Error
from yolov9.runtime.backend import FileBackend

METADATA_FILE = "metadata.json"


def import_interpreter():
    """The LiteRT interpreter class, or one clear error naming the extra that installs it."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise YOLOv9Error('TFLite models need ai-edge-litert: pip install "yolov9[litert]"') from None
    return Interpreter


def tflite_metadata(path: Path) -> dict[str, str]:
    """The metadata appended to a .tflite by our exporter ({} for files without it)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return {k: str(v) for k, v in json.loads(archive.read(METADATA_FILE)).items()}
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError):
        return {}


def _quantize(array: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(array / scale + zero), info.min, info.max).astype(detail["dtype"])


def _dequantize(array: np.ndarray, detail: dict) -> np.ndarray:
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float32)
    scale, zero = detail["quantization"]
    return (array.astype(np.float32) - zero) * scale


class TFLiteBackend(FileBackend):
    """A LiteRT interpreter (XNNPACK on the CPU) over the file's default signature."""

    format = "tflite"

    def __init__(self, path: Union[str, Path], device: Union[str, torch.device] = "cpu", threads: int = 0):
        interpreter = import_interpreter()
        self.path = self.existing_file(path, "TFLite")
        try:
            self.interpreter = interpreter(model_path=str(self.path), num_threads=threads or os.cpu_count())
            self.runner = self.interpreter.get_signature_runner()
        except (ValueError, RuntimeError) as e:  # what the interpreter raises for corrupt / foreign files
            raise YOLOv9Error(f"{self.path}: not a loadable TFLite model ({str(e).strip().splitlines()[0][:200]})"
                              ) from None
        (self.input_name, self.input_detail), = self.runner.get_input_details().items()
        self.output_details = sorted(self.runner.get_output_details().items(),  # output_0, output_1, ...
                                     key=lambda item: (len(item[0]), item[0]))
        shape = [int(d) for d in self.input_detail["shape"]]
        self.channels_last = shape[-1] == 3
        self.describe(tflite_metadata(self.path), [shape[0], 3, *shape[1:3]] if self.channels_last else shape)

    def run(self, array: np.ndarray) -> list[np.ndarray]:
        if self.channels_last:
            array = np.ascontiguousarray(array.transpose(0, 2, 3, 1))
        if not np.issubdtype(self.input_detail["dtype"], np.floating):
            array = _quantize(array, self.input_detail)
        outputs = self.runner(**{self.input_name: array})
        return [_dequantize(outputs[name], detail) for name, detail in self.output_details]
