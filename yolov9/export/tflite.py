"""TFLite / LiteRT export with litert-torch: the task's export graph (anchors of the export shape cached, so they
are constants of the program), wrapped to take one NHWC image (B, H, W, 3), converted by `litert_torch.convert`;
our metadata as `metadata.json` in a zip appended to the file (see `yolov9.runtime.tflite_backend`).

Outputs are those of our ONNX export (detection (B, 4 + nc, A); segmentation also the prototypes, NCHW). Shapes
are fixed: litert-torch specialises the anchor count even for a dynamic program, so there is one file per input
size; in-graph NMS is not offered (detect / val run our NMS on the plain output).

--half: fp16 weights (ai-edge-quantizer `float_casting`), float32 input and output, about half the file.
--int8: ai-edge-quantizer static quantization: int8 per-channel weights and int8 activations (int8 input too),
calibrated on the --data images letterboxed as predict sees them, with the same float rule as the other formats:
the head's final 1x1 convs, DFL, box decoding and sigmoid, the prototype conv and the output stay float (the output
concatenates pixels and scores: one int8 scale for both would round every score to 0).
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import torch

from yolov9.errors import YOLOv9Error
from yolov9.export.format import ExportFormat, ExportJob
from yolov9.io.atomic import atomic_write_bytes
from yolov9.models.detection_model import DetectionModel
from yolov9.runtime.tflite_backend import METADATA_FILE, import_interpreter, tflite_metadata

CONTAINER = r"/torch\.nn\.modules\.container\.Sequential_\d+/yolov9\.nn\.blocks\.Conv_[01]"  # hidden head blocks
PROTO_HIDDEN = r"/yolov9\.nn\.blocks\.Proto_\w+/(?:yolov9\.nn\.blocks\.Conv_cv[12]|torch\.nn\.modules\.upsampling)"
OUTPUT = r"serving_default_output"


def import_litert_torch():
    """litert_torch and ai_edge_quantizer, or one clear error naming the extra that installs them."""
    try:
        import litert_torch
        from ai_edge_quantizer import quantizer
    except ImportError:
        raise YOLOv9Error('TFLite export needs litert-torch: pip install "yolov9[litert]"') from None
    return litert_torch, quantizer


def float_tensors(model: DetectionModel) -> str:
    """Regex of the tensors kept float in INT8: litert-torch names tensors by module path (`...DetectHead_22/torch
    .nn.modules.container.Sequential_0/yolov9.nn.blocks.Conv_1/...`; the ModuleList's name is not in it), so: the
    head's tensors except those of its hidden conv blocks (and of the prototype module's 3x3 convs), plus the
    output."""
    index = next(i for i, m in enumerate(model.model) if m is model.head)
    head = rf"{re.escape(type(model.head).__name__)}_{index}(?!\d)(?!{CONTAINER})(?!{PROTO_HIDDEN})"
    return f"{head}|{OUTPUT}"


def with_metadata(content: bytes, metadata: dict[str, str]) -> bytes:
    """The flatbuffer with a zip holding `metadata.json` appended (ignored by interpreters)."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(METADATA_FILE, json.dumps(metadata))
    return bytes(content) + archive.getvalue()


class TFLiteFormat(ExportFormat):
    """LiteRT flatbuffer via litert-torch (NHWC input); fp16 / INT8 by ai-edge-quantizer."""

    name, suffix, runtime, extra = "tflite", ".tflite", "LiteRT", "litert"
    packages = ("litert_torch", "ai_edge_litert", "ai_edge_quantizer")
    nms = dynamic = False

    def write(self, exporter: ExportJob, file: Path, conf: float, metadata: dict[str, str]) -> Path:
        litert_torch, quantizer = import_litert_torch()
        model = exporter.model
        model.head.dynamic = False  # the dynamic anchor path is data-dependent for torch.export
        images = torch.zeros(exporter.batch, 3, *exporter.imgsz)
        with torch.no_grad():
            model(images)  # anchors of this shape cached: they become constants of the exported program
        module = litert_torch.to_channel_last_io(exporter.graph(model, conf).module.eval(), args=[0])
        shown = litert_torch.config.show_progress
        litert_torch.config.show_progress = exporter.verbose
        try:
            content = litert_torch.convert(module.eval(), (images.permute(0, 2, 3, 1),)).model_content()
        finally:
            litert_torch.config.show_progress = shown
        if exporter.half:
            fp16 = quantizer.Quantizer(bytearray(content))
            fp16.add_weight_only_config(regex=".*", operation_name=_all_ops(), num_bits=16,
                                        algorithm_key="float_casting")
            content = fp16.quantize(enable_progress_report=False).quantized_model
        return atomic_write_bytes(file, with_metadata(content, metadata))

    def quantize(self, exporter: ExportJob, fp32: Path, file: Path) -> Path:
        _, quantizer = import_litert_torch()
        content = fp32.read_bytes()
        int8 = quantizer.Quantizer(bytearray(content))
        int8.add_static_config(regex=".*", operation_name=_all_ops(), activation_num_bits=8, weight_num_bits=8)
        int8.update_quantization_recipe(regex=float_tensors(exporter.model), operation_name=_all_ops(),
                                        algorithm_key="no_quantize")
        signatures = import_interpreter()(model_content=content).get_signature_list()
        (signature, names), = signatures.items()
        calibration = {signature: [{names["inputs"][0]: x.transpose(0, 2, 3, 1)} for x in exporter.calibration()]}
        result = int8.quantize(int8.calibrate(calibration, num_threads=torch.get_num_threads()),
                               enable_progress_report=False)
        metadata = {**tflite_metadata(fp32), "precision": "int8"}
        return atomic_write_bytes(file, with_metadata(result.quantized_model, metadata))


def _all_ops():
    from ai_edge_quantizer import qtyping

    return qtyping.TFLOperationName.ALL_SUPPORTED
