"""What one export format provides to the `Exporter`: how to write the float model and its INT8 variant, the
options it accepts, and any check of the file beyond running it (see `yolov9.export.exporter.FORMATS`)."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol

import numpy as np

from yolov9.errors import YOLOv9Error
from yolov9.models.detection_model import DetectionModel
from yolov9.tasks.base import ExportGraph


class ExportJob(Protocol):
    """What a format reads from the export it writes (`yolov9.export.exporter.Exporter` is one)."""

    model: DetectionModel  # stripped, fused, eval, float32, CPU
    imgsz: tuple[int, int]
    batch: int
    dynamic: bool
    half: bool
    opset: int
    verbose: bool

    def graph(self, model: DetectionModel, conf: float) -> ExportGraph:
        """The task's export graph built on `model` (NMS threshold `conf` when the export has NMS)."""

    def calibration_files(self) -> list[Path]:
        """The INT8 calibration images."""

    def calibration(self) -> list[np.ndarray]:
        """The INT8 calibration inputs (batch, 3, h, w) float32 RGB in [0, 1], letterboxed as predict does."""


class ExportFormat:
    """One format; subclasses set the attributes and implement `write` and `quantize`.

    `suffix` ends the written path (a file suffix, or a folder name's tail); `runtime` names what runs it;
    `packages` are the modules it needs, installed by the pip extra `extra`.
    """

    name = ""
    suffix = ""
    runtime = ""
    packages: tuple[str, ...] = ()
    extra = ""
    nms = True          # can append in-graph NMS
    dynamic = True      # can have dynamic batch / height / width
    half_on_cuda = False  # --half traces in fp16 on a CUDA device (else: fp16 weights, float I/O)

    def write(self, exporter: ExportJob, file: Path, conf: float, metadata: dict[str, str]) -> Path:
        """Write the float (fp32, or fp16 with --half) model of `exporter` with `metadata`; NMS threshold `conf`."""
        raise NotImplementedError

    def quantize(self, exporter: ExportJob, fp32: Path, file: Path) -> Path:
        """Write the INT8 variant of the written `fp32` model, calibrated on `exporter.calibration()`."""
        raise NotImplementedError

    def check(self, path: Path) -> str:
        """A check of the file's structure before it is run ('' when the runtime's loading is the check)."""
        return ""

    def missing(self) -> list[str]:
        """The modules this format needs that are not installed."""
        return [name for name in self.packages if not _installed(name)]

    def require(self) -> None:
        """One clear error naming the extra when a needed module is missing."""
        missing = self.missing()
        if missing:
            raise YOLOv9Error(f"--format {self.name} needs {', '.join(missing)}: pip install \"yolov9[{self.extra}]\"")

    def variant(self, file: Path, tag: str) -> Path:
        """`file` with `-tag` before the format's suffix: best-320.onnx -> best-320-int8.onnx."""
        name = file.name
        if name.endswith(self.suffix):
            name = name[:-len(self.suffix)]
        elif self.suffix.startswith("."):
            name = Path(name).stem
        return file.with_name(f"{name}-{tag}{self.suffix}")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or blocked package counts as missing
        return False
