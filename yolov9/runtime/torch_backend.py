"""PyTorch backend: the prepared (stripped, fused) model in eager mode."""
from __future__ import annotations

from typing import Any, Union

import torch

from yolov9.models.detection_model import DetectionModel
from yolov9.runtime.backend import Backend, float_outputs
from yolov9.runtime.prepare import prepare_for_inference


class TorchBackend(Backend):
    """A DetectionModel prepared for inference; on the CPU the model and its inputs are channels-last (NHWC)."""

    format = "torch"

    def __init__(self, model: DetectionModel, device: Union[str, torch.device] = "cpu", half: bool = False):
        self.device = torch.device(device)
        channels_last = self.device.type == "cpu"
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = prepare_for_inference(model, self.device, half, channels_last)
        self.dtype = torch.float16 if half else torch.float32
        self.names = list(model.names)
        self.stride = int(model.stride.max())
        self.task = getattr(model, "task", "detect")
        self.imgsz = (model.imgsz, model.imgsz) if model.imgsz else None
        self.source = str(getattr(model, "source", "model"))

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> Any:
        images = images.to(self.device, self.dtype).contiguous(memory_format=self.memory_format)
        return float_outputs(self.model(images))
