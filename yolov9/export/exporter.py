"""`export(model, format="onnx", ...)`: strip the auxiliary branch, fuse, trace to ONNX, verify, optionally INT8.

The written file is checked right away: `onnx.checker`, one ONNX Runtime run, and the max abs difference
against the PyTorch model on the same input (printed; `verify` returns the differences).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional, Sequence, Union

import torch

from yolov9.errors import YOLOv9Error
from yolov9.export.onnx import DEFAULT_OPSET, export_onnx
from yolov9.models.detection_model import DetectionModel
from yolov9.models.strip import strip_auxiliary
from yolov9.ops.nms import non_max_suppression

FORMATS = ("onnx",)


def deployable(model: Union[DetectionModel, str, Path]) -> DetectionModel:
    """A float32, eval, fused, single-branch copy of a model (or of a checkpoint's model)."""
    if not isinstance(model, DetectionModel):
        from yolov9.io.checkpoint import load

        model = load(model)
    single = strip_auxiliary(model)
    return single.float().eval().fuse().cpu()


def _image_size(imgsz: Union[int, Sequence[int]], stride: int) -> tuple[int, int]:
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz) * (2 // len(imgsz))
    if h % stride or w % stride:
        raise YOLOv9Error(f"--imgsz {h} {w} must be multiples of the model stride {stride}")
    return int(h), int(w)


def export(model: Union[DetectionModel, str, Path], format: str = "onnx", imgsz: Union[int, Sequence[int]] = 640,
           batch: int = 1, dynamic: bool = False, nms: bool = False, half: bool = False, int8: bool = False,
           data=None, calib_images: int = 64, opset: int = DEFAULT_OPSET, conf: float = 0.25, iou: float = 0.45,
           max_det: int = 300, file: Optional[Union[str, Path]] = None, check: bool = True,
           verbose: bool = True) -> Path:
    """Export a model or checkpoint; returns the written path (the INT8 file when `int8`)."""
    if format != "onnx":
        raise YOLOv9Error(f"export format {format!r} is not supported (choose from {FORMATS})")
    if opset < DEFAULT_OPSET:
        raise YOLOv9Error(f"--opset {opset} is too old: ONNX export needs opset >= {DEFAULT_OPSET}")
    if int8 and (half or data is None):
        raise YOLOv9Error("--int8 needs --data (a dataset YAML or image folder for calibration) and no --half")
    source = None if isinstance(model, DetectionModel) else Path(model)
    deploy = deployable(model)
    size = _image_size(imgsz, int(deploy.stride.max()))
    if file is None:
        stem = source.with_suffix("") if source is not None else Path(deploy.yaml.get("yaml_file", "model")).stem
        file = Path(f"{stem}{'-nms' if nms else ''}{'-fp16' if half else ''}.onnx")
    if half and not torch.cuda.is_available():
        raise YOLOv9Error("--half export traces the model in fp16, which needs a CUDA device (none found)")
    traced = copy.deepcopy(deploy).cuda().half() if half else deploy
    path = export_onnx(traced, file, size, batch, dynamic, nms, half, opset, conf, iou, max_det)
    if check:
        verify(path, deploy, size, batch, nms, conf, iou, max_det, verbose, device="cuda" if half else "cpu")
    if int8:
        from yolov9.export.quantize import quantize_int8

        int8_path = quantize_int8(path, path.with_name(path.stem + "-int8.onnx"),
                                  calibration_images(data, calib_images), size)
        if verbose:
            print(f"INT8 model written to {int8_path}")
        return int8_path
    return path


def verify(path: Path, model: DetectionModel, imgsz: tuple[int, int], batch: int, nms: bool,
           conf: float, iou: float, max_det: int, verbose: bool = True, device: str = "cpu") -> dict:
    """onnx.checker + one ONNX Runtime run compared with PyTorch on random input; returns the differences."""
    import onnx

    from yolov9.export.runtime import OnnxBackend

    onnx.checker.check_model(str(path))
    images = torch.rand(batch, 3, *imgsz, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(images)
    got = OnnxBackend(path, device)(images)
    if nms:
        reference = non_max_suppression(expected, conf, iou, max_det=max_det)
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
    from yolov9.engine.sources import IMAGE_SUFFIXES

    folder = Path(str(data))
    if folder.is_dir():
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        from yolov9.data.config import load_data_config

        config = load_data_config(data)
        files = [Path(p) for p in (config.get("train") or config.get("val") or [])]
    if not files:
        raise YOLOv9Error(f"{data}: no calibration images found")
    step = max(len(files) // limit, 1)
    return files[::step][:limit]

