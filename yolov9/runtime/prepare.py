"""The one "prepare for inference" step: strip the auxiliary branch, float32, eval, fuse, then device / dtype /
memory format. Exports and the PyTorch backend both start from it."""
from __future__ import annotations

import copy
from typing import Union

import torch

from yolov9.models.detection_model import DetectionModel
from yolov9.models.strip import strip_auxiliary


def prepare_for_inference(model: DetectionModel, device: Union[str, torch.device] = "cpu", half: bool = False,
                          channels_last: bool = False) -> DetectionModel:
    """A single-branch, fused, eval-mode copy of `model` (the caller's model is left untouched).

    `channels_last` keeps the weights NHWC: on the CPU oneDNN then runs every convolution without converting
    layouts around it (gelan-c at 640 px: about 0.75x the NCHW time on a 2-core AVX2 machine).
    """
    single = strip_auxiliary(model) if model.branches > 1 else copy.deepcopy(model)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    prepared = single.float().eval().fuse().to(torch.device(device), memory_format=memory_format)
    return prepared.half() if half else prepared
