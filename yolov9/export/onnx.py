"""ONNX export of a deploy-ready (stripped, fused, eval) model: trace the task's export graph, add our metadata.

Plain detection output: `output` (B, 4 + nc, A), boxes xywh in input pixels then sigmoid class scores, anchors
level by level (stride 8, 16, 32), row-major within a level. With NMS see `yolov9.tasks.end_to_end`.
Segmentation: `output0` (B, 4 + nc + nm, A) (the same rows, then the raw mask coefficients) and `output1`, the
prototypes (B, nm, H/4, W/4); with NMS see `yolov9.tasks.segment` (the graph of every task: `Task.export_graph`).
"""
from __future__ import annotations

import copy
import io
import json
import warnings
from pathlib import Path
from typing import Optional, Sequence, Union

import torch

from yolov9.errors import YOLOv9Error
from yolov9.export.format import ExportFormat, ExportJob
from yolov9.io.atomic import atomic_write_bytes
from yolov9.models.detection_model import DetectionModel
from yolov9.tasks.base import ExportGraph
from yolov9.version import __version__

DEFAULT_OPSET = 17


def import_onnx():
    """The onnx package, or one clear error naming the extra that installs it."""
    try:
        import onnx
    except ImportError:
        raise YOLOv9Error('ONNX export needs onnx and onnxruntime: pip install "yolov9[export]"') from None
    return onnx


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
    onnx = import_onnx()

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


class OnnxFormat(ExportFormat):
    """ONNX (opset >= 17), run by ONNX Runtime; `--half` traces in fp16 on CUDA; INT8: ORT static QDQ
    (`yolov9.export.quantize`)."""

    name, suffix, runtime, extra = "onnx", ".onnx", "onnxruntime", "export"
    packages = ("onnx", "onnxruntime")
    half_on_cuda = True

    def write(self, exporter: ExportJob, file: Path, conf: float, metadata: dict[str, str]) -> Path:
        model = copy.deepcopy(exporter.model).cuda().half() if exporter.half else exporter.model
        return export_onnx(model, exporter.graph(model, conf), file, exporter.imgsz, exporter.batch, exporter.dynamic,
                           exporter.half, exporter.opset, metadata)

    def quantize(self, exporter: ExportJob, fp32: Path, file: Path) -> Path:
        from yolov9.export.quantize import quantize_int8

        return quantize_int8(fp32, file, exporter.calibration_files(), exporter.imgsz)

    def check(self, path: Path) -> str:
        import_onnx().checker.check_model(str(path))
        return "onnx.checker ok, "
