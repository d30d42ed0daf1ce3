"""FLOP counting by forward hooks, with the conventions of `thop` that the official numbers use.

Counted: convolutions (multiply-accumulates of the kernel, no bias) and affine BatchNorm (4 ops per element),
reported as GFLOPs = 2 x multiply-accumulates. Pooling, upsampling, activations and additions count zero.
The probe input is one stride-sized image; convolution work scales exactly with area, so the count is scaled
to the requested size.
"""
from __future__ import annotations

import copy
from typing import Sequence, Union

import torch
from torch import nn


def count_gflops(model: nn.Module, imgsz: Union[int, Sequence[int]] = 640) -> float:
    """GFLOPs of one eval-mode forward pass of `model` (every head branch) on a 3 x H x W image."""
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    probe = max(int(model.stride.max()), 32)
    total = [0.0]

    def conv_hook(m: nn.Conv2d, inputs: tuple, output: torch.Tensor) -> None:
        total[0] += output.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def bn_hook(m: nn.BatchNorm2d, inputs: tuple, output: torch.Tensor) -> None:
        total[0] += inputs[0].numel() * (4 if m.affine else 2)

    probe_model = copy.deepcopy(model).eval()
    handles = []
    for m in probe_model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.BatchNorm2d):
            handles.append(m.register_forward_hook(bn_hook))
    param = next(probe_model.parameters())
    with torch.no_grad():
        probe_model(torch.zeros(1, 3, probe, probe, device=param.device, dtype=param.dtype), all_branches=True)
    for handle in handles:
        handle.remove()
    return total[0] * 2 / 1e9 * (h / probe) * (w / probe)
