"""DetectionModel: the layer graph of a config, its forward pass, fusing and summary (detection and instance
segmentation: the head, the last row, decides the task)."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Union

import torch
from torch import nn

from yolov9.cfg import PathOrDict, load_model_config
from yolov9.errors import ConfigError
from yolov9.models.builder import build_layers
from yolov9.nn.head import DetectHead

STRIDE_PROBE = 64  # size of the dummy input used to measure strides at build time (2 cells at stride 32)


class DetectionModel(nn.Module):
    """A YOLOv9 / GELAN detector or instance segmenter built from a config dict (official schema).

    State-dict keys are `model.<layer index>.<official attribute path>`, as in official checkpoints.
    `task` is "detect" or "segment" (from the head).

    Detection. Train mode: `model(x)` -> list over head branches of list over levels of raw maps
    (B, 64 + nc, H_i, W_i). Eval mode: `model(x)` -> (B, 4 + nc, A) of the main (last) branch: xywh in input
    pixels, sigmoid scores; `model(x, all_branches=True)` -> such a tensor per branch, in config order.

    Segmentation. Train mode: list over branches of (maps, coefficients (B, nm, A), prototypes (B, nm, H/4, W/4)).
    Eval mode: (pred, prototypes) of the main branch, pred (B, 4 + nc + nm, A) = boxes, scores, raw mask
    coefficients; `all_branches=True` -> such a pair per branch.

    In any mode `raw_maps(x)` gives the train-mode structure and `head.decode(raw_maps(x)[b], b)` branch b's eval
    output.
    """

    def __init__(self, cfg: Mapping[str, Any], in_channels: int = 3):
        super().__init__()
        self.yaml = dict(cfg)
        layers = build_layers(self.yaml, in_channels)
        for layer in layers:
            module = layer.module
            module.i, module.f, module.type = layer.index, layer.sources, layer.type_name
            module.np = sum(p.numel() for p in module.parameters())
        self.model = nn.ModuleList(layer.module for layer in layers)
        self.save = sorted({s % layer.index for layer in layers
                            for s in (layer.sources if isinstance(layer.sources, list) else [layer.sources])
                            if s != -1})
        self.nc = int(self.yaml["nc"])
        self.names: list[str] = [str(i) for i in range(self.nc)]
        self.hyp: Optional[dict] = None
        self.imgsz: Optional[int] = None  # the image size it was trained at (from a checkpoint), if known
        self._init_batchnorm()
        self.stride = self._measure_strides(in_channels)
        self.head.stride = self.stride.clone()
        self.head.bias_init()

    @property
    def head(self) -> DetectHead:
        return self.model[-1]  # type: ignore[return-value]

    @property
    def branches(self) -> int:
        return self.head.branches

    @property
    def task(self) -> str:
        """'detect' or 'segment'."""
        return self.head.task

    def forward(self, x: torch.Tensor, all_branches: bool = False):
        return self.head(self.features(x), all_branches=all_branches)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Run every layer but the head; returns the head's input maps (branches * levels)."""
        outputs: list[Optional[torch.Tensor]] = []
        for module in self.model[:-1]:
            if module.f != -1:
                x = outputs[module.f] if isinstance(module.f, int) else [x if j == -1 else outputs[j] for j in module.f]
            x = module(x)
            outputs.append(x if module.i in self.save else None)
        sources = self.head.f
        return [x if j == -1 else outputs[j] for j in sources]

    def raw_maps(self, x: torch.Tensor) -> list:
        """The train-mode output in any mode: per branch its raw maps [level] -> (B, 64 + nc, H_i, W_i)
        (segmentation: per branch (maps, coefficients, prototypes))."""
        return self.head.raw_maps(self.features(x))

    def _measure_strides(self, in_channels: int) -> torch.Tensor:
        """Strides of the head's levels, from the sizes of its first branch's input maps."""
        was_training = self.training
        self.eval()
        with torch.no_grad():
            levels = self.features(torch.zeros(1, in_channels, STRIDE_PROBE, STRIDE_PROBE))[:self.head.nl]
        self.train(was_training)
        return torch.tensor([STRIDE_PROBE / m.shape[-2] for m in levels])

    def _init_batchnorm(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps, m.momentum = 1e-3, 0.03

    def fuse(self) -> "DetectionModel":
        """Fold BatchNorm into convs and merge RepConvN branches, in place (eval outputs unchanged)."""
        for module in list(self.modules()):
            fuse = getattr(module, "fuse", None)
            if callable(fuse) and module is not self:
                fuse()
        return self

    @property
    def is_fused(self) -> bool:
        return not any(isinstance(m, nn.BatchNorm2d) for m in self.modules())

    def info(self, imgsz: Union[int, Sequence[int]] = 640) -> dict:
        """Summary: params, gflops (at imgsz), layers, branches, task, nc, strides, fused."""
        from yolov9.models.flops import count_gflops

        return {
            "params": sum(p.numel() for p in self.parameters()),
            "gflops": count_gflops(self, imgsz),
            "layers": len(self.model),
            "branches": self.branches,
            "task": self.task,
            "nc": self.nc,
            "strides": [int(s) for s in self.stride.tolist()],
            "fused": self.is_fused,
        }


def build_model(cfg: PathOrDict, nc: Optional[int] = None, names: Optional[Sequence[str]] = None,
                seed: int = 0) -> DetectionModel:
    """Build a model from a bundled name ('yolov9-c', 'gelan-s.yaml'), a YAML path or a config dict.

    `nc` overrides the config's class count; `names` sets class names (and nc, if nc is not given).
    The initial weights are drawn with the CPU generator seeded with `seed` (its state is restored afterwards),
    so a config and a seed always give the same model, in any process.
    """
    config = load_model_config(cfg)
    if names is not None and nc is None:
        nc = len(names)
    if nc is not None:
        config["nc"] = int(nc)
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        model = DetectionModel(config)
    if names is not None:
        if len(names) != model.nc:
            raise ConfigError(f"{len(names)} class names given for a model with nc={model.nc}")
        model.names = [str(n) for n in names]
    return model
