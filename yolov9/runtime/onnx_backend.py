"""ONNX Runtime backend over a model written by `yolov9 export` (its metadata gives names, stride, shape, task)."""
from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np
import torch

from yolov9.errors import YOLOv9Error
from yolov9.runtime.backend import FileBackend


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise YOLOv9Error('ONNX models need onnxruntime: pip install "yolov9[export]" '
                          "(or onnxruntime-gpu for CUDA)") from None
    return onnxruntime


class OnnxBackend(FileBackend):
    """An ONNX Runtime session. The CUDA provider is used when `device` is not 'cpu' and onnxruntime-gpu offers it.

    A fixed-shape model accepts smaller inputs: they are padded at the bottom and right with the letterbox grey,
    which leaves pixel coordinates unchanged.
    """

    format = "onnx"

    def __init__(self, path: Union[str, Path], device: Union[str, torch.device] = "cpu", threads: int = 0):
        ort = _import_onnxruntime()
        self.path = self.existing_file(path, "ONNX")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        available = ort.get_available_providers()
        wants_cuda = str(device) != "cpu" and "CUDAExecutionProvider" in available
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if wants_cuda else ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types for corrupt / invalid files
            raise YOLOv9Error(f"{self.path}: not a loadable ONNX model ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:200]})") from None
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.dtype = np.float16 if model_input.type == "tensor(float16)" else np.float32
        shape = [d if isinstance(d, int) else None for d in model_input.shape]
        self.describe(self.session.get_modelmeta().custom_metadata_map, shape)
        self.device = torch.device("cuda" if wants_cuda else "cpu")

    def run(self, array: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input_name: array.astype(self.dtype)})
