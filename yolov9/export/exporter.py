"""`export(model, format="onnx", ...)`: prepare (strip, fuse), write the task's export graph in a format, verify,
optionally INT8. One Exporter for every format; what differs per format is an `ExportFormat` in its own module
(ONNX: `export/onnx.py`, OpenVINO: `export/openvino.py`, TFLite: `export/tflite.py`).

The written file is checked right away in its own runtime: the format's structural check (onnx.checker for ONNX),
one run on the sample input, and the max abs difference against the PyTorch model on the same input (printed;
the check is returned with the path's `Exporter`). INT8 files are checked by the mAP change on --data's val split.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

from yolov9.callbacks import Callbacks
from yolov9.errors import YOLOv9Error
from yolov9.export.format import ExportFormat
from yolov9.export.onnx import DEFAULT_OPSET, OnnxFormat, model_metadata
from yolov9.export.openvino import OpenVinoFormat
from yolov9.export.tflite import TFLiteFormat
from yolov9.models.detection_model import DetectionModel
from yolov9.runtime import load_model, prepare_for_inference, require_trainable
from yolov9.tasks import task_of
from yolov9.tasks.base import ExportGraph

FORMATS: dict[str, ExportFormat] = {f.name: f for f in (OnnxFormat(), OpenVinoFormat(), TFLiteFormat())}


def deployable(model: Union[DetectionModel, str, Path]) -> DetectionModel:
    """A float32, eval, fused, single-branch copy of a model (or of a checkpoint's model) on the CPU."""
    return prepare_for_inference(require_trainable(load_model(model), "be exported again"))


def _image_size(imgsz: Union[int, Sequence[int]], stride: int) -> tuple[int, int]:
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz) * (2 // len(imgsz))
    if h % stride or w % stride:
        raise YOLOv9Error(f"--imgsz {h} {w} must be multiples of the model stride {stride}")
    return int(h), int(w)


def _export_format(name: str, dynamic: bool, nms: bool, half: bool, int8: bool, data, opset: int) -> ExportFormat:
    """The format `name`, after checking that it is installed and takes these options."""
    if name not in FORMATS:
        raise YOLOv9Error(f"export format {name!r} is not supported (choose from {', '.join(FORMATS)})")
    fmt = FORMATS[name]
    if opset < DEFAULT_OPSET:
        raise YOLOv9Error(f"--opset {opset} is too old: ONNX export needs opset >= {DEFAULT_OPSET}")
    if int8 and (half or data is None):
        raise YOLOv9Error("--int8 needs --data (a dataset YAML or image folder for calibration) and no --half")
    if half and fmt.half_on_cuda and not torch.cuda.is_available():
        raise YOLOv9Error(f"--half {name} export traces the model in fp16, which needs a CUDA device (none found)")
    if nms and not fmt.nms:
        raise YOLOv9Error(f"--format {name} has no in-graph NMS; export without --nms (detect and val run NMS)")
    if dynamic and not fmt.dynamic:
        raise YOLOv9Error(f"--format {name} has fixed shapes; export one file per input size (--imgsz H W) "
                          "instead of --dynamic")
    fmt.require()
    return fmt


class Exporter:
    """One export: fires on_export_start / on_export_end; after `run()` holds `path` and `check`.

    `metadata`: extra string entries for the file's metadata (besides names, stride, imgsz, ...).
    """

    def __init__(self, model: Union[DetectionModel, str, Path], format: str = "onnx",
                 imgsz: Union[int, Sequence[int]] = 640, batch: int = 1, dynamic: bool = False, nms: bool = False,
                 half: bool = False, int8: bool = False, data=None, calib_images: int = 64,
                 opset: int = DEFAULT_OPSET, conf: float = 0.25, iou: float = 0.45, max_det: int = 300,
                 file: Optional[Union[str, Path]] = None, check: bool = True, verbose: bool = True,
                 force: bool = False, metadata: Optional[dict[str, str]] = None,
                 callbacks: Optional[Callbacks] = None):
        self.format_spec = _export_format(format, dynamic, nms, half, int8, data, opset)
        source = getattr(model, "source", None) if isinstance(model, DetectionModel) else model
        self.source = Path(source) if source is not None else None  # the checkpoint, for names next to it
        self.model = deployable(model)
        self.task = task_of(self.model)
        self.format, self.imgsz = format, _image_size(imgsz, int(self.model.stride.max()))
        self.batch, self.dynamic, self.nms, self.half, self.int8 = batch, dynamic, nms, half, int8
        self.data, self.calib_images, self.opset = data, calib_images, opset
        self.conf, self.iou, self.max_det = conf, iou, max_det
        self.run_check, self.verbose, self.extra_metadata = check, verbose, dict(metadata or {})
        self.file = Path(file) if file is not None else self.default_file()
        self.int8_file = self.format_spec.variant(self.file, "int8")
        for target in [self.file] + ([self.int8_file] if int8 else []):
            if self.source is not None and target.exists() and target.resolve() == self.source.resolve():
                raise YOLOv9Error(f"{target}: the output would replace the input; choose another --file")
            if target.exists() and not force:
                raise YOLOv9Error(f"{target}: already exists; choose another --file or pass --force to replace it")
        self.callbacks = callbacks or Callbacks()
        self.path: Optional[Path] = None
        self.check: dict[str, Any] = {}

    def default_file(self) -> Path:
        """Next to the weights, named by size and variant: best-320.onnx, best-320x416-dynamic-nms-fp16.onnx,
        best-320_openvino_model (a folder), best-320-fp16.tflite."""
        stem = self.source.with_suffix("") if self.source is not None else Path(
            Path(self.model.yaml.get("yaml_file", "model")).stem)
        h, w = self.imgsz
        variant = "".join(f"-{name}" for name, on in (("dynamic", self.dynamic), ("nms", self.nms),
                                                       ("fp16", self.half)) if on)
        return Path(f"{stem}-{h if h == w else f'{h}x{w}'}{variant}{self.format_spec.suffix}")

    def graph(self, model: DetectionModel, conf: float) -> ExportGraph:
        """The task's export graph built on `model` (this export's model, or a copy of it), NMS threshold `conf`."""
        return self.task.export_graph(model, self.nms, conf, self.iou, self.max_det)

    def metadata(self) -> dict[str, str]:
        """What the written file carries (read back by the runtime backends)."""
        return {**model_metadata(self.model, self.imgsz, self.nms, self.dynamic, self.half), **self.extra_metadata}

    def calibration_files(self) -> list[Path]:
        return calibration_images(self.data, self.calib_images)

    def calibration(self) -> list[np.ndarray]:
        """INT8 calibration inputs: (batch, 3, h, w) float32 RGB in [0, 1], --data images letterboxed to --imgsz
        as predict does (each image repeated over the batch)."""
        from yolov9.export.quantize import letterboxed_batches

        return [np.repeat(x, self.batch, 0) for x in letterboxed_batches(self.calibration_files(), self.imgsz)]

    def run(self) -> Path:
        """Write the file (the INT8 file when `int8`) and return its path."""
        self.callbacks.run("on_export_start", self)
        self.path = self.format_spec.write(self, self.file, self.conf, self.metadata())
        if self.run_check:
            self.check = self.verify(self.path, self.conf)
            if self.nms and not self.check["compared"]:
                self.check = self.verify_at_lower_threshold()
        if self.int8:
            fp32 = self.path
            self.path = self.format_spec.quantize(self, fp32, self.int8_file)
            if self.verbose:
                print(f"INT8 model written to {self.path}")
            if self.run_check:
                self.check["int8"] = self.int8_check(fp32)
        self.callbacks.run("on_export_end", self)
        return self.path

    def int8_check(self, fp32: Path) -> dict:
        """`int8_accuracy` of the two files, where they can be validated (square or dynamic shapes, no NMS)."""
        if self.nms or (self.imgsz[0] != self.imgsz[1] and not self.dynamic):
            if self.verbose:
                print("INT8 accuracy not measured: validation needs a square or --dynamic export without --nms")
            return {}
        return int8_accuracy(fp32, self.path, self.data, self.verbose, self.imgsz[0])

    def verify(self, path: Path, conf: float) -> dict:
        device = "cuda" if self.half and self.format_spec.half_on_cuda else "cpu"
        return verify(path, self.model, self.imgsz, self.batch, self.nms, conf, self.iou, self.max_det, self.verbose,
                      device=device)

    def verify_at_lower_threshold(self) -> dict:
        """The sample gives no detection above --conf, which would check nothing: check the same graph written
        with a threshold at half the sample's best score instead (a temporary file; the export keeps --conf)."""
        with torch.no_grad():
            output = self.model(sample_input(self.batch, self.imgsz))
        conf = float(self.task.detections(self.task.postprocess(output, 0.0, self.iou, 1)[0])[:, 4].max()) / 2
        with tempfile.TemporaryDirectory() as folder:
            path = self.format_spec.write(self, Path(folder) / f"check{self.format_spec.suffix}", conf,
                                          {"nms": "true"})
            check = self.verify(path, conf)
        if self.verbose:
            print(f"compared {check['compared']} detections at check threshold {conf:.3g} (the sample has none "
                  f"above --conf {self.conf}; {self.file} keeps --conf {self.conf})")
        return check


def export(model: Union[DetectionModel, str, Path], format: str = "onnx", **options: Any) -> Path:
    """Export a model or checkpoint (see `Exporter` for the options); returns the written path."""
    return Exporter(model, format, **options).run()


def verify(path: Path, model: DetectionModel, imgsz: tuple[int, int], batch: int, nms: bool,
           conf: float, iou: float, max_det: int, verbose: bool = True, device: str = "cpu",
           images: Optional[torch.Tensor] = None) -> dict:
    """The format's structural check + one run in the file's runtime, compared with PyTorch on the same input;
    returns the differences.

    With in-graph NMS the detections are compared (how many: `compared`); see `Exporter.run` for the sample that
    makes sure there are some.
    """
    backend = load_model(path, device=device)
    fmt = FORMATS[backend.format]
    structure = fmt.check(path)
    images = sample_input(batch, imgsz) if images is None else images
    with torch.no_grad():
        expected = model(images)
    got = backend(images)
    result = task_of(model).export_differences(got, expected, nms, conf, iou, max_det)
    if verbose:
        print(f"checked {path}: {structure}{fmt.runtime} ok, vs PyTorch {result}")
    return result


def sample_input(batch: int, imgsz: Sequence[int]) -> torch.Tensor:
    """The export check's input: (batch, 3, h, w) uniform noise, the same every time."""
    return torch.rand(batch, 3, *imgsz, generator=torch.Generator().manual_seed(0))


def int8_accuracy(fp32: Path, int8: Path, data, verbose: bool = True, imgsz: int = 640) -> dict:
    """mAP50-95 of the fp32 and INT8 files on the dataset's val split (when `data` is a dataset YAML with one);
    `imgsz`: the size of dynamic-shape files (fixed-shape files use theirs)."""
    from yolov9.data.config import load_data_config
    from yolov9.engine.validator import validate

    if Path(str(data)).is_dir() or not load_data_config(data)["val"]:
        if verbose:
            print(f"INT8 accuracy not measured: {data} has no val split (pass a dataset YAML as --data)")
        return {}
    options = dict(imgsz=imgsz, batch=8, workers=0, plots=False, verbose=False)
    before, after = (validate(str(path), data, **options)["mAP50-95"] for path in (fp32, int8))
    if verbose:
        print(f"INT8 check on {data} val: mAP50-95 {before:.4f} (fp32) -> {after:.4f} (int8), "
              f"{100 * (after - before):+.2f} points")
    return {"mAP50-95_fp32": before, "mAP50-95_int8": after}


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
