"""Inference backends behind one interface: PyTorch modules and ONNX Runtime sessions.

A backend is called on a float batch (B, 3, H, W) in [0, 1] and returns either the plain head output
(B, 4 + nc, A) (xywh pixels + scores) or, for a model exported with NMS, the tuple
(num_dets (B, 1), boxes (B, K, 4) xyxy, scores (B, K), classes (B, K)). Both come back as torch tensors.
"""
from __future__ import annotations

import ast
import copy
import json
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from yolov9.errors import YOLOv9Error
from yolov9.models.detection_model import DetectionModel
from yolov9.models.strip import strip_auxiliary

BackendOutput = Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]


class TorchBackend:
    """A stripped, fused, eval-mode copy of a DetectionModel (the caller's model is left untouched).

    On the CPU the copy and its inputs are channels-last (NHWC): oneDNN's convolutions then run without
    converting layouts around every layer (gelan-c at 640 px: about 0.75x the NCHW time on this machine).
    """

    fixed_shape: Optional[tuple[int, int]] = None
    has_nms = False

    def __init__(self, model: DetectionModel, device: Union[str, torch.device] = "cpu", half: bool = False):
        deployed = strip_auxiliary(model) if model.branches > 1 else copy.deepcopy(model)
        self.device = torch.device(device)
        self.memory_format = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        deployed = deployed.float().eval().fuse().to(self.device, memory_format=self.memory_format)
        self.model = deployed.half() if half else deployed
        self.dtype = torch.float16 if half else torch.float32
        self.names = list(model.names)
        self.stride = int(model.stride.max())

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> BackendOutput:
        images = images.to(self.device, self.dtype).contiguous(memory_format=self.memory_format)
        return self.model(images).float()


class OnnxBackend:
    """An ONNX Runtime session over a model written by `yolov9 export` (metadata gives names, stride, shape).

    The CUDA provider is used when `device` is not 'cpu' and onnxruntime-gpu offers it. A fixed-shape model
    accepts smaller inputs: they are padded at the bottom and right, which leaves pixel coordinates unchanged.
    """

    def __init__(self, path: Union[str, Path], device: Union[str, torch.device] = "cpu", threads: int = 0):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise YOLOv9Error(f"{self.path}: ONNX file not found")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        available = ort.get_available_providers()
        wants_cuda = str(device) != "cpu" and "CUDAExecutionProvider" in available
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if wants_cuda else ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.names = _parse_names(meta.get("names", "[]"), self.path)
        self.stride = int(meta.get("stride", 32))
        self.has_nms = meta.get("nms", "false") == "true"
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.dtype = np.float16 if model_input.type == "tensor(float16)" else np.float32
        h, w = model_input.shape[2:]
        self.fixed_shape = (h, w) if isinstance(h, int) and isinstance(w, int) else None
        batch = model_input.shape[0]
        self.fixed_batch = batch if isinstance(batch, int) else None
        self.device = torch.device("cuda" if wants_cuda else "cpu")

    def __call__(self, images: torch.Tensor) -> BackendOutput:
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
        return outputs[0].float()


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
    padded = np.full(array.shape[:2] + tuple(shape), 114 / 255, dtype=array.dtype)
    padded[:, :, :h, :w] = array
    return padded


def _concat(parts: list) -> BackendOutput:
    if isinstance(parts[0], torch.Tensor):
        return torch.cat(parts)
    return tuple(torch.cat(p) for p in zip(*parts))


Backend = Union[TorchBackend, OnnxBackend]


def load_backend(weights, device: Union[str, torch.device] = "cpu", half: bool = False) -> Backend:
    """A backend for a DetectionModel, a backend, a checkpoint (.pt/.pth), a model YAML, or an .onnx file."""
    if isinstance(weights, (TorchBackend, OnnxBackend)):
        return weights
    if isinstance(weights, DetectionModel):
        return TorchBackend(weights, device, half)
    path = Path(str(weights))
    if path.suffix == ".onnx":
        return OnnxBackend(path, device)
    if path.suffix in (".pt", ".pth"):
        from yolov9.io.checkpoint import load

        return TorchBackend(load(path), device, half)
    from yolov9.models import build_model

    return TorchBackend(build_model(weights), device, half)
