"""OpenVINO export: the task's export graph as our ONNX (the same file `--format onnx` writes and checks), converted
with `openvino.convert_model`, our metadata in the IR's rt_info (section `yolov9`), written as one folder
`<stem>_openvino_model/` holding `<stem>.xml` + `<stem>.bin` (the whole folder replaced at once).

--dynamic gives an IR with dynamic batch, height and width (rect inference); --nms keeps ONNX's NonMaxSuppression,
which OpenVINO runs natively. --half stores the weights in fp16 (half the file); the CPU plugin still computes in
fp32 unless the CPU has AVX512-FP16 / AMX.

--int8: NNCF post-training quantization of the fp32 IR (preset MIXED: symmetric weights, asymmetric activations
for SiLU's negative range; fast bias correction), calibrated on the --data images letterboxed as predict sees them.
Kept float, by op name, with the rule of the ONNX Runtime INT8 path (`yolov9.export.quantize.float_names`): the
head's final 1x1 convs (box DFL logits, class logits, mask coefficients), the DFL softmax, box decoding, sigmoid,
NMS and, for segmentation, the convolution that makes the prototypes.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Callable

from yolov9.errors import YOLOv9Error
from yolov9.export.format import ExportFormat, ExportJob
from yolov9.export.onnx import export_onnx
from yolov9.export.quantize import float_names
from yolov9.runtime.openvino_backend import import_openvino, ir_file, ir_metadata

SUFFIX = "_openvino_model"
NOT_COMPUTED = ("Constant", "Parameter", "Result")  # op types without a friendly name worth quantizing


def import_nncf():
    """The nncf package, or one clear error naming the extra that installs it."""
    try:
        import nncf
    except ImportError:
        raise YOLOv9Error('OpenVINO INT8 export needs nncf: pip install "yolov9[openvino]"') from None
    return nncf


def replace_folder(folder: Path, write: Callable[[Path], None]) -> Path:
    """`write(temp)` fills a new folder next to `folder`, which then takes its place: a failed or interrupted write
    leaves the previous folder (if any) as it was, and readers never see a half-written one."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        write(temp)
        for file in temp.iterdir():
            with open(file, "rb") as f:
                os.fsync(f.fileno())
        previous = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.old")
        if folder.exists():
            os.replace(folder, previous)
        os.replace(temp, folder)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    if previous.is_dir():
        shutil.rmtree(previous, ignore_errors=True)
    elif previous.exists():
        previous.unlink()
    return folder


def save_ir(model, folder: Path, metadata: dict[str, str], compress_to_fp16: bool) -> Path:
    """Write an `openvino.Model` with `metadata` as folder/<stem>.xml + .bin (stem: the folder name without
    `_openvino_model`)."""
    ov = import_openvino()
    for key, value in metadata.items():
        model.set_rt_info(value, ["yolov9", key])
    stem = folder.name[:-len(SUFFIX)] if folder.name.endswith(SUFFIX) else folder.name
    return replace_folder(folder, lambda temp: ov.save_model(model, str(temp / f"{stem}.xml"),
                                                             compress_to_fp16=compress_to_fp16))


class OpenVinoFormat(ExportFormat):
    """OpenVINO IR via our ONNX; INT8 by NNCF."""

    name, suffix, runtime, extra = "openvino", SUFFIX, "OpenVINO", "openvino"
    packages = ("openvino", "onnx")

    def write(self, exporter: ExportJob, file: Path, conf: float, metadata: dict[str, str]) -> Path:
        ov = import_openvino()
        model = exporter.model
        with tempfile.TemporaryDirectory() as folder:
            onnx_path = export_onnx(model, exporter.graph(model, conf), Path(folder) / "model.onnx", exporter.imgsz,
                                    exporter.batch, exporter.dynamic, False, exporter.opset, metadata)
            converted = ov.convert_model(str(onnx_path))
        return save_ir(converted, file, metadata, compress_to_fp16=exporter.half)

    def quantize(self, exporter: ExportJob, fp32: Path, file: Path) -> Path:
        ov, nncf = import_openvino(), import_nncf()
        model = ov.Core().read_model(str(ir_file(fp32)))
        names = [op.get_friendly_name() for op in model.get_ops() if op.get_type_name() not in NOT_COMPUTED]
        calibration = exporter.calibration()
        logger = logging.getLogger("nncf")
        level = logger.level
        logger.setLevel(logging.WARNING)  # not one INFO line per op kept float
        try:
            quantized = nncf.quantize(model, nncf.Dataset(calibration), preset=nncf.QuantizationPreset.MIXED,
                                      subset_size=len(calibration),
                                      ignored_scope=nncf.IgnoredScope(names=float_names(names), validate=False))
        finally:
            logger.setLevel(level)
        return save_ir(quantized, file, {**ir_metadata(model), "precision": "int8"}, compress_to_fp16=False)
