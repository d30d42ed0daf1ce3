"""ONNX Runtime backend over a model written by `yolov9 export` (its metadata gives names, stride, shape, task)."""
from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from yolov9.errors import YOLOv9Error
from yolov9.ops.letterbox import PAD_VALUE
from yolov9.runtime.backend import Backend


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise YOLOv9Error('ONNX models need onnxruntime: pip install "yolov9[export]" '
                          "(or onnxruntime-gpu for CUDA)") from None
    return onnxruntime


class OnnxBackend(Backend):
    """An ONNX Runtime session. The CUDA provider is used when `device` is not 'cpu' and onnxruntime-gpu offers it.

    A fixed-shape model accepts smaller inputs: they are padded at the bottom and right with the letterbox grey,
    which leaves pixel coordinates unchanged.
    """

    format = "onnx"

    def __init__(self, path: Union[str, Path], device: Union[str, torch.device] = "cpu", threads: int = 0):
        ort = _import_onnxruntime()
        self.path = Path(path)
        self.source = str(self.path)
        if not self.path.is_file():
            raise YOLOv9Error(f"{self.path}: ONNX file not found")
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
        meta = self.session.get_modelmeta().custom_metadata_map
        self.names = _parse_names(meta.get("names", "[]"), self.path)
        self.stride = int(meta.get("stride", 32))
        self.has_nms = meta.get("nms", "false") == "true"
        self.task = meta.get("task", "detect")
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.dtype = np.float16 if model_input.type == "tensor(float16)" else np.float32
        h, w = model_input.shape[2:]
        self.fixed_shape = (h, w) if isinstance(h, int) and isinstance(w, int) else None
        imgsz = json.loads(meta["imgsz"]) if "imgsz" in meta else None
        self.imgsz = self.fixed_shape or (tuple(imgsz) if imgsz else None)
        batch = model_input.shape[0]
        self.fixed_batch = batch if isinstance(batch, int) else None
        self.device = torch.device("cuda" if wants_cuda else "cpu")

    def __call__(self, images: torch.Tensor) -> Any:
        array = images.detach().float().cpu().numpy()
        if self.fixed_shape is not None:
            array = _pad_to(array, self.fixed_shape, self.path)
        n = array.shape[0]
        if self.fixed_batch is not None and n != self.fixed_batch:
            return _concat([self(images[i:i + self.fixed_batch]) for i in range(0, n, self.fixed_batch)])
        outputs = [torch.from_numpy(np.asarray(o)) for o in self.session.run(None, {self.input_name:
                                                                               array.astype(self.dtype)})]
        if self.has_nms:
            num, boxes, scores, classes = outputs
            return num.long(), boxes.float(), scores.float(), classes.long()
        return outputs[0].float() if len(outputs) == 1 else tuple(o.float() for o in outputs)


def _parse_names(text: str, path: Path) -> list[str]:
    """Class names from metadata: our JSON list, or a {index: name} mapping (as other exporters write it)."""
    try:
        names = json.loads(text)
    except json.JSONDecodeError:
        try:
            names = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise YOLOv9Error(f"{path}: metadata 'names' is neither a JSON list nor a mapping: {text[:80]!r}")
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    return [str(n) for n in names]


def _pad_to(array: np.ndarray, shape: tuple[int, int], path: Path) -> np.ndarray:
    h, w = array.shape[2:]
    if h > shape[0] or w > shape[1]:
        raise YOLOv9Error(f"{path}: input {h}x{w} is larger than the exported fixed shape {shape[0]}x{shape[1]}; "
                          f"re-export with --imgsz {h} {w} or --dynamic")
    if (h, w) == tuple(shape):
        return array
    padded = np.full(array.shape[:2] + tuple(shape), PAD_VALUE / 255, dtype=array.dtype)
    padded[:, :, :h, :w] = array
    return padded


def _concat(parts: list) -> Any:
    if isinstance(parts[0], torch.Tensor):
        return torch.cat(parts)
    return tuple(torch.cat(p) for p in zip(*parts))
