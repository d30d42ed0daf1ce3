"""ONNX export of a deploy-ready (stripped, fused, eval) model: trace the task's export graph, add our metadata.

Plain detection output: `output` (B, 4 + nc, A), boxes xywh in input pixels then sigmoid class scores, anchors
level by level (stride 8, 16, 32), row-major within a level. With NMS see `yolov9.tasks.end_to_end`.
"""
from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Optional, Sequence, Union

import torch

from yolov9.io.atomic import atomic_write_bytes
from yolov9.models.detection_model import DetectionModel
from yolov9.tasks.base import ExportGraph
from yolov9.version import __version__

DEFAULT_OPSET = 17


def model_metadata(model: DetectionModel, imgsz: Sequence[int], nms: bool, dynamic: bool, half: bool) -> dict:
    """The `metadata_props` every export carries (read back by the runtime backends)."""
    return {"format": "yolov9", "version": __version__, "task": model.task, "names": json.dumps(list(model.names)),
            "nc": str(model.nc), "stride": str(int(model.stride.max())), "imgsz": json.dumps(list(imgsz)),
            "nms": "true" if nms else "false", "dynamic": "true" if dynamic else "false",
            "precision": "fp16" if half else "fp32"}


def export_onnx(model: DetectionModel, graph: ExportGraph, file: Union[str, Path], imgsz: Sequence[int],
                batch: int = 1, dynamic: bool = False, half: bool = False, opset: int = DEFAULT_OPSET,
                metadata: Optional[dict] = None) -> Path:
    """Trace `graph.module` (built on `model`: stripped, fused, eval) to ONNX with metadata; written atomically."""
    import onnx

    device = next(model.parameters()).device
    images = torch.zeros(batch, 3, *imgsz, device=device, dtype=torch.float16 if half else torch.float32)
    axes = None
    if dynamic:
        axes = {"images": {0: "batch", 2: "height", 3: "width"}, **graph.dynamic_axes}
    model.head.dynamic = dynamic
    buffer = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
            torch.onnx.export(graph.module.eval(), (images,), buffer, opset_version=opset, input_names=["images"],
                              output_names=list(graph.dynamic_axes), dynamic_axes=axes, do_constant_folding=True,
                              dynamo=False)
    finally:
        model.head.dynamic = False
    proto = onnx.load_from_string(buffer.getvalue())
    for key, value in (metadata or {}).items():
        proto.metadata_props.add(key=key, value=value)
    return atomic_write_bytes(file, proto.SerializeToString())
