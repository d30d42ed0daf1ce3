"""A Backend for a model source in the runtime asked for, or with `auto` in the fastest one installed here, converting
a checkpoint ONCE and caching the converted file next to it (what `yolov9 detect --backend` runs).

`auto` on the CPU: the first installed of `AUTO_ORDER`, fastest first by model latency on a 2-core CPU (OpenVINO
fp32, then ONNX Runtime fp32, then PyTorch channels-last; benchmarks/latency.py), as a dynamic-shape export, so that
frames get the minimal stride-multiple letterbox. `best.pt` is cached as `best.cache_openvino_model/` (or
`best.cache.onnx`). The cache carries the key it was built for (sha256 of the checkpoint's bytes + runtime + export
options + yolov9 version): a cache of other weights or options (stale) or one that does not load (corrupt) is
rebuilt, and every write is atomic. A conversion whose check against PyTorch fails is deleted and not used. PyTorch
runs instead on a GPU, with `half`, for a model config (no file to key a cache on) and when no runtime is installed
or every conversion failed (said in one line).
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Optional, Union

import torch

from yolov9.errors import YOLOv9Error, warn
from yolov9.export.exporter import FORMATS, Exporter
from yolov9.export.onnx import DEFAULT_OPSET
from yolov9.models.detection_model import DetectionModel
from yolov9.runtime import Backend, TorchBackend, load_model
from yolov9.runtime.load import CHECKPOINT_SUFFIXES, ModelSource
from yolov9.version import __version__

RUNTIMES = {"onnxruntime": "onnx", "openvino": "openvino"}  # --backend name -> export format
BACKENDS = ("auto", "torch", *RUNTIMES)
AUTO_ORDER = ("openvino", "onnxruntime")
CPU_ONLY = ("openvino",)
BOX_TOLERANCE, OTHER_TOLERANCE = 0.1, 1e-3  # a conversion's check vs PyTorch (px; scores and the rest)


def cached_backend(source: ModelSource, device: Union[str, torch.device] = "cpu", half: bool = False,
                   backend: str = "auto", verbose: bool = True) -> Backend:
    """A Backend for `source` in `backend` ('auto', 'torch', 'onnxruntime', 'openvino'; see the module).

    Exported files run in their own runtime (`backend` must be 'auto' or that runtime).
    """
    if backend not in BACKENDS:
        raise YOLOv9Error(f"--backend {backend!r} is not one of {', '.join(BACKENDS)}")
    model = load_model(source, device=device)
    if isinstance(model, Backend):
        if backend not in ("auto", *(name for name, fmt in RUNTIMES.items() if fmt == model.format)):
            raise YOLOv9Error(f"{model.source}: a {model.format} file runs in its own runtime; --backend {backend} "
                              "converts .pt checkpoints")
        return model
    weights = checkpoint_file(model)
    on_cpu = torch.device(device).type == "cpu"
    if backend == "auto":
        if on_cpu and not half and weights is not None:
            for runtime in AUTO_ORDER:
                if not FORMATS[RUNTIMES[runtime]].missing():
                    try:
                        return converted(model, weights, runtime, device, verbose)
                    except Exception as e:  # any failure of a runtime's conversion: the next one, at worst PyTorch
                        warn(f"--backend auto: no {runtime} conversion of {weights} ({type(e).__name__}: {e}); "
                             "trying the next runtime")
        return TorchBackend(model, device, half)
    if backend == "torch":
        return TorchBackend(model, device, half)
    if half or (backend in CPU_ONLY and not on_cpu):
        raise YOLOv9Error(f"--backend {backend} runs a float32 conversion on the CPU; use --backend torch for "
                          f"{'--half' if half else device}")
    if weights is None:
        raise YOLOv9Error(f"--backend {backend} converts a checkpoint file (.pt), not "
                          f"{getattr(model, 'source', None) or 'a model config'}")
    FORMATS[RUNTIMES[backend]].require()
    return converted(model, weights, backend, device, verbose)


def checkpoint_file(model: DetectionModel) -> Optional[Path]:
    """The checkpoint file `model` was loaded from, if any."""
    source = getattr(model, "source", None)
    path = Path(source) if source else None
    return path if path is not None and path.suffix.lower() in CHECKPOINT_SUFFIXES and path.is_file() else None


def cache_path(weights: Path, runtime: str) -> Path:
    """Where the conversion of `weights` for `runtime` is cached: best.pt -> best.cache.onnx,
    best.cache_openvino_model."""
    return weights.with_name(f"{weights.stem}.cache{FORMATS[RUNTIMES[runtime]].suffix}")


def cache_key(weights: Path, runtime: str) -> str:
    """sha256 of the checkpoint's bytes and of what the conversion depends on."""
    digest = hashlib.sha256()
    with open(weights, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    options = {"runtime": runtime, "dynamic": True, "opset": DEFAULT_OPSET, "yolov9": __version__}
    digest.update(json.dumps(options, sort_keys=True).encode())
    return digest.hexdigest()


def converted(model: DetectionModel, weights: Path, runtime: str, device: Union[str, torch.device] = "cpu",
              verbose: bool = True) -> Backend:
    """The cached conversion of `weights` (loaded as `model`) for `runtime`, (re)built when missing, stale or
    corrupt."""
    key, path = cache_key(weights, runtime), cache_path(weights, runtime)
    name = FORMATS[RUNTIMES[runtime]].runtime
    if path.exists():
        try:
            backend = load_model(path, device=device)
            if getattr(backend, "metadata", {}).get("cache_key") == key:
                if verbose:
                    print(f"backend: {name} ({path}, converted from {weights.name}; --backend torch for PyTorch)")
                return backend
            reason = "stale: built for other weights or options"
        except YOLOv9Error as e:
            reason = f"unreadable: {e}"
        if verbose:
            print(f"rebuilding {path} ({reason})")
    size = model.imgsz or 640
    exporter = Exporter(model, RUNTIMES[runtime], imgsz=size, dynamic=True, file=path, force=True, verbose=False,
                        metadata={"cache_key": key})
    exporter.run()
    failed = {k: v for k, v in exporter.check.items() if k.startswith("max_abs_diff") and
              not v <= (BOX_TOLERANCE if k.endswith("boxes") else OTHER_TOLERANCE)}
    if failed:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        raise YOLOv9Error(f"the {name} conversion differs from PyTorch by {failed}; not used")
    if verbose:
        print(f"backend: {name}; converted {weights.name} once to {path} (reused while {weights.name} is unchanged; "
              "--backend torch for PyTorch)")
    return load_model(path, device=device)
