"""INT8 static quantization of an exported ONNX model with ONNX Runtime (QDQ format, per-channel weights).

The backbone, the neck and the head's hidden conv blocks are quantized whole (convs with their SiLU, concats,
pools, upsampling), so that ONNX Runtime runs them as chains of integer kernels (QLinearConv etc.). The head's
last 1x1 convs, the DFL softmax, sigmoid scores, box decoding and NMS stay in float32: quantizing them costs
accuracy (pixels, scores) for almost no speed.

Segmentation heads follow the same rule: the mask-coefficient branches' hidden blocks and the `Proto` module's
3x3 convs and upsampling (a quarter of gelan-c-seg's FLOPs, at H/4) are quantized; the last 1x1 coefficient
convs and the conv that makes the prototypes themselves (Proto `cv3`; DSegment's 1x1 `proto`) stay float32, so
the coefficients and prototypes, whose product decides every mask pixel, are not rounded to 8 bits.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from yolov9.engine.predictor import preprocess
from yolov9.errors import YOLOv9Error


def letterboxed_batches(files: Sequence[Path], imgsz: tuple[int, int]) -> Iterator[np.ndarray]:
    """(1, 3, H, W) float32 RGB inputs in [0, 1], letterboxed to the fixed export shape as predict does."""
    import cv2

    for file in files:
        image = cv2.imread(str(file))
        if image is None:
            raise YOLOv9Error(f"{file}: cannot be read as a calibration image")
        yield preprocess([image], imgsz, auto=False, stride=32)[0].numpy()


def _reader(input_name: str, files: Sequence[Path], imgsz: tuple[int, int]):
    from onnxruntime.quantization import CalibrationDataReader

    class LetterboxReader(CalibrationDataReader):
        def __init__(self):
            self.batches = letterboxed_batches(files, imgsz)

        def get_next(self) -> Optional[dict]:
            batch = next(self.batches, None)
            return None if batch is None else {input_name: batch}

    return LetterboxReader()


def float_names(names: Sequence[str]) -> list[str]:
    """Of a graph's node names (ONNX nodes, or the ops of an OpenVINO IR converted from our ONNX: both keep the
    '/model.<i>/...' names), those kept in float32: everything outside layers 0..head-1 and the head's hidden conv
    blocks (box, class and coefficient branches; the prototype module's 3x3 convs)."""
    layer_of = {name: int(m.group(1)) for name in names if (m := re.search(r"/model\.(\d+)/", name))}
    if not layer_of:
        raise YOLOv9Error("the graph has no /model.<i>/ node names; export it with `yolov9 export`")
    head = max(layer_of.values())
    hidden_head_block = re.compile(rf"/model\.{head}/(cv\d+\.\d+/cv\d+\.\d+\.[01]|proto\d*/(cv1|upsample|cv2))/")
    return [name for name in names if layer_of.get(name, head) >= head and not hidden_head_block.search(name)]


def float_nodes(graph) -> list[str]:
    """Names of the ONNX graph's nodes kept in float32 (see `float_names`)."""
    return float_names([n.name for n in graph.node])


def quantize_int8(fp32_path: Path, int8_path: Path, calibration_files: Sequence[Path],
                  imgsz: tuple[int, int]) -> Path:
    """Calibrate on `calibration_files` (MinMax over letterboxed images) and write a QDQ INT8 model."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from yolov9.io.atomic import atomic_write_bytes

    model = onnx.load(str(fp32_path))
    input_name = model.graph.input[0].name
    prepared = Path(int8_path).with_suffix(".prep.tmp.onnx")
    temporary = Path(int8_path).with_suffix(".tmp.onnx")
    try:
        # ORT's graph optimisation first: it removes the tracer's Identity nodes, without which many convs
        # would keep float kernels (weights not seen as initializers) instead of becoming QLinearConv.
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        graph = onnx.load(str(prepared)).graph
        quantize_static(str(prepared), str(temporary), _reader(input_name, calibration_files, imgsz),
                        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, nodes_to_exclude=float_nodes(graph),
                        calibrate_method=CalibrationMethod.MinMax)
        quantized = onnx.load(str(temporary))
    finally:
        prepared.unlink(missing_ok=True)
        temporary.unlink(missing_ok=True)
    del quantized.metadata_props[:]
    for entry in model.metadata_props:
        quantized.metadata_props.add(key=entry.key, value="int8" if entry.key == "precision" else entry.value)
    atomic_write_bytes(int8_path, quantized.SerializeToString())
    return Path(int8_path)
