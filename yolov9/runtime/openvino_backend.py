"""OpenVINO backend over an IR written by `yolov9 export --format openvino` (a folder with one .xml + .bin).

The IR keeps our metadata in its rt_info section `yolov9` (an IR converted from one of our ONNX files by other
tools still has it under `framework`). Static and dynamic input shapes; always the CPU plugin.
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np
import torch

from yolov9.errors import YOLOv9Error
from yolov9.runtime.backend import FileBackend

METADATA_SECTIONS = ("yolov9", "framework")  # ours, else the ONNX metadata OpenVINO carried over


def import_openvino():
    """The openvino package, or one clear error naming the extra that installs it."""
    try:
        import openvino
    except ImportError:
        raise YOLOv9Error('OpenVINO models need openvino: pip install "yolov9[openvino]"') from None
    return openvino


def ir_file(path: Union[str, Path]) -> Path:
    """The .xml of an IR given as the file itself or as its folder (e.g. best-640_openvino_model/)."""
    path = Path(path)
    if path.is_dir():
        xmls = sorted(path.glob("*.xml"))
        if len(xmls) != 1:
            raise YOLOv9Error(f"{path}: an OpenVINO model folder holds exactly one .xml, found {len(xmls)}")
        path = xmls[0]
    if not path.is_file() or not path.with_suffix(".bin").is_file():
        raise YOLOv9Error(f"{path}: OpenVINO IR not found (an .xml with its .bin next to it)")
    return path


def ir_metadata(model) -> dict[str, str]:
    """Our metadata from an `openvino.Model`'s rt_info (strings)."""
    info = model.get_rt_info()
    for section in METADATA_SECTIONS:
        if section in info:
            return {key: value.astype(str) for key, value in info[section].items()}
    return {}


class OpenVinoBackend(FileBackend):
    """An IR compiled for the OpenVINO CPU plugin (latency mode: one stream, one reused infer request; fp32
    arithmetic whatever the IR stores).

    A dynamic IR is compiled again, once, for every input shape it meets (at most `STATIC_SHAPES` kept, the
    oldest dropped): the plugin runs a static shape faster than the dynamic graph (gelan-s, a 1280x720 frame at
    640x384: see benchmarks/latency.py), and the letterboxed frames of a video or folder have one or a few shapes.
    """

    format = "openvino"
    STATIC_SHAPES = 8

    def __init__(self, path: Union[str, Path], device: Union[str, torch.device] = "cpu", threads: int = 0):
        ov = import_openvino()
        self.path = ir_file(path)
        self.core = ov.Core()
        # f32 arithmetic: on CPUs with AVX512-BF16 / AMX the plugin's default is bf16 (boxes off by ~1 px)
        self.config = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            self.config["INFERENCE_NUM_THREADS"] = threads
        try:
            self.model = self.core.read_model(str(self.path))
            compiled = self.core.compile_model(self.model, "CPU", self.config)
        except RuntimeError as e:  # OpenVINO reports corrupt / invalid IRs as RuntimeError
            raise YOLOv9Error(f"{self.path}: not a loadable OpenVINO IR ({str(e).strip().splitlines()[0][:200]})"
                              ) from None
        self.outputs = len(compiled.outputs)
        self.dynamic = self.model.input(0).get_partial_shape().is_dynamic
        self.requests: dict[tuple[int, ...], object] = {} if self.dynamic else {(): compiled.create_infer_request()}
        shape = [d.get_length() if d.is_static else None for d in self.model.input(0).get_partial_shape()]
        self.describe(ir_metadata(self.model), shape)

    def request_for(self, shape: tuple[int, ...]):
        """The infer request of a model compiled for `shape` (static IRs: the one request)."""
        key = tuple(shape) if self.dynamic else ()
        if key not in self.requests:
            if len(self.requests) >= self.STATIC_SHAPES:
                self.requests.pop(next(iter(self.requests)))
            model = self.model.clone()
            model.reshape(list(shape))
            self.requests[key] = self.core.compile_model(model, "CPU", self.config).create_infer_request()
        return self.requests[key]

    def run(self, array: np.ndarray) -> list[np.ndarray]:
        request = self.request_for(array.shape)
        request.infer({0: array})
        return [request.get_output_tensor(i).data.copy() for i in range(self.outputs)]
