"""`export(model, format="onnx", ...)`: prepare (strip, fuse), trace the task's export graph, verify, optionally INT8.

The written file is checked right away: `onnx.checker`, one ONNX Runtime run, and the max abs difference
against the PyTorch model on the same input (printed; the check is returned with the path's `Exporter`).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import torch

from yolov9.callbacks import Callbacks
from yolov9.errors import YOLOv9Error
from yolov9.export.onnx import DEFAULT_OPSET, export_onnx, model_metadata
from yolov9.models.detection_model import DetectionModel
from yolov9.runtime import load_model, prepare_for_inference, require_trainable
from yolov9.tasks import task_of

FORMATS = ("onnx",)


def deployable(model: Union[DetectionModel, str, Path]) -> DetectionModel:
    """A float32, eval, fused, single-branch copy of a model (or of a checkpoint's model) on the CPU."""
    return prepare_for_inference(require_trainable(load_model(model), "be exported again"))


def _image_size(imgsz: Union[int, Sequence[int]], stride: int) -> tuple[int, int]:
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz) * (2 // len(imgsz))
    if h % stride or w % stride:
        raise YOLOv9Error(f"--imgsz {h} {w} must be multiples of the model stride {stride}")
    return int(h), int(w)


class Exporter:
    """One export: fires on_export_start / on_export_end; after `run()` holds `path` and `check`."""

    def __init__(self, model: Union[DetectionModel, str, Path], format: str = "onnx",
                 imgsz: Union[int, Sequence[int]] = 640, batch: int = 1, dynamic: bool = False, nms: bool = False,
                 half: bool = False, int8: bool = False, data=None, calib_images: int = 64,
                 opset: int = DEFAULT_OPSET, conf: float = 0.25, iou: float = 0.45, max_det: int = 300,
                 file: Optional[Union[str, Path]] = None, check: bool = True, verbose: bool = True,
                 callbacks: Optional[Callbacks] = None):
        if format not in FORMATS:
            raise YOLOv9Error(f"export format {format!r} is not supported (choose from {', '.join(FORMATS)})")
        if opset < DEFAULT_OPSET:
            raise YOLOv9Error(f"--opset {opset} is too old: ONNX export needs opset >= {DEFAULT_OPSET}")
        if int8 and (half or data is None):
            raise YOLOv9Error("--int8 needs --data (a dataset YAML or image folder for calibration) and no --half")
        if half and not torch.cuda.is_available():
            raise YOLOv9Error("--half export traces the model in fp16, which needs a CUDA device (none found)")
        self.source = None if isinstance(model, DetectionModel) else Path(model)
        self.model = deployable(model)
        self.task = task_of(self.model)
        self.format, self.imgsz = format, _image_size(imgsz, int(self.model.stride.max()))
        self.batch, self.dynamic, self.nms, self.half, self.int8 = batch, dynamic, nms, half, int8
        self.data, self.calib_images, self.opset = data, calib_images, opset
        self.conf, self.iou, self.max_det = conf, iou, max_det
        self.file, self.run_check, self.verbose = file, check, verbose
        self.callbacks = callbacks or Callbacks()
        self.path: Optional[Path] = None
        self.check: dict[str, Any] = {}

    def default_file(self) -> Path:
        stem = self.source.with_suffix("") if self.source is not None else Path(
            Path(self.model.yaml.get("yaml_file", "model")).stem)
        return Path(f"{stem}{'-nms' if self.nms else ''}{'-fp16' if self.half else ''}.onnx")

    def run(self) -> Path:
        """Write the file (the INT8 file when `int8`) and return its path."""
        self.callbacks.run("on_export_start", self)
        traced = copy.deepcopy(self.model).cuda().half() if self.half else self.model
        graph = self.task.export_graph(traced, self.nms, self.conf, self.iou, self.max_det)
        metadata = model_metadata(self.model, self.imgsz, self.nms, self.dynamic, self.half)
        self.path = export_onnx(traced, graph, self.file or self.default_file(), self.imgsz, self.batch,
                                self.dynamic, self.half, self.opset, metadata)
        if self.run_check:
            self.check = verify(self.path, self.model, self.imgsz, self.batch, self.nms, self.conf, self.iou,
                                self.max_det, self.verbose, device="cuda" if self.half else "cpu")
        if self.int8:
            from yolov9.export.quantize import quantize_int8

            self.path = quantize_int8(self.path, self.path.with_name(self.path.stem + "-int8.onnx"),
                                      calibration_images(self.data, self.calib_images), self.imgsz)
            if self.verbose:
                print(f"INT8 model written to {self.path}")
        self.callbacks.run("on_export_end", self)
        return self.path


def export(model: Union[DetectionModel, str, Path], format: str = "onnx", **options: Any) -> Path:
    """Export a model or checkpoint (see `Exporter` for the options); returns the written path."""
    return Exporter(model, format, **options).run()


def verify(path: Path, model: DetectionModel, imgsz: tuple[int, int], batch: int, nms: bool,
           conf: float, iou: float, max_det: int, verbose: bool = True, device: str = "cpu") -> dict:
    """onnx.checker + one ONNX Runtime run compared with PyTorch on random input; returns the differences."""
    import onnx

    from yolov9.runtime.onnx_backend import OnnxBackend

    onnx.checker.check_model(str(path))
    images = torch.rand(batch, 3, *imgsz, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(images)
    got = OnnxBackend(path, device)(images)
    if nms:
        task = task_of(model)
        reference = task.postprocess(expected, conf, iou, max_det)
        counts = [int(n) for n in got[0].view(-1)]
        same = counts == [len(r) for r in reference]
        box_diff = max((float((got[1][i, :n] - r[:, :4]).abs().max()) for i, (n, r) in
                        enumerate(zip(counts, reference)) if n), default=0.0) if same else float("nan")
        result = {"detections": counts, "same_count": same, "max_abs_diff_boxes": box_diff}
    else:
        diff = (got - expected).abs()
        result = {"max_abs_diff_boxes": float(diff[:, :4].max()), "max_abs_diff_scores": float(diff[:, 4:].max())}
    if verbose:
        print(f"checked {path}: onnx.checker ok, onnxruntime ok, vs PyTorch {result}")
    return result


def calibration_images(data, limit: int) -> list[Path]:
    """Up to `limit` image files from a dataset YAML (train split, else val) or an image folder."""
    from yolov9.data.config import IMAGE_SUFFIXES, load_data_config

    folder = Path(str(data))
    if folder.is_dir():
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        config = load_data_config(data)
        files = [Path(p) for p in (config.get("train") or config.get("val") or [])]
    if not files:
        raise YOLOv9Error(f"{data}: no calibration images found")
    step = max(len(files) // limit, 1)
    return files[::step][:limit]
