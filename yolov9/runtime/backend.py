"""The Backend interface: what the predictor, the validator and the exporter's checks run a model through."""
from __future__ import annotations

from typing import Any, Optional

import torch


def float_outputs(output: Any) -> Any:
    """A model output (a tensor, or nested tuples / lists of them) in float32."""
    if isinstance(output, torch.Tensor):
        return output.float()
    return type(output)(float_outputs(o) for o in output)


class Backend:
    """A model ready for inference in some runtime.

    Called on a float batch (B, 3, H, W) RGB in [0, 1], it returns torch tensors on the CPU or the backend's
    device: the decoded head output of the model's task (detection: (B, 4 + nc, A) xywh pixels + scores), or, for a
    file exported with NMS, (num_dets (B, 1), boxes (B, K, 4) xyxy, scores (B, K), classes (B, K)).

    Attributes: `names` (class names), `stride` (largest stride), `task` ('detect', ...), `fixed_shape` ((h, w) of
    an exported fixed-shape model, else None: any stride multiple), `has_nms`, `imgsz` (the size the model was
    trained or exported at, or None), `source` (what it was loaded from, for messages), `format` ('torch', 'onnx').
    """

    names: list[str]
    stride: int
    task: str = "detect"
    fixed_shape: Optional[tuple[int, int]] = None
    has_nms: bool = False
    imgsz: Optional[tuple[int, int]] = None
    source: str = "model"
    format: str = ""
    device: torch.device = torch.device("cpu")

    def __call__(self, images: torch.Tensor) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.format} {self.source}>"
