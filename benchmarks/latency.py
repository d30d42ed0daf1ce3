"""Inference latency, batch 1, CPU: ours (PyTorch fused, ONNX Runtime fp32 and INT8) vs Ultralytics yolov9s/c.

One process, one torch and one onnxruntime for every contender; 2 torch threads and 2 ORT intra-op threads;
denormals flushed to zero in both (random-init activations shrink into denormals, which would time the FPU's
slow path instead of the model); ORT's idle threads do not spin (spinning threads of one session would steal
the cores from whichever contender runs next).
Ours runs as our predictor runs it (TorchBackend: stripped, fused, channels-last on CPU); Ultralytics' PyTorch
model as its predictor runs it (fused, eager, NCHW).
Runs are interleaved (one run of each contender per round) and the median per contender is reported, with the
ratio to the matching Ultralytics contender and our achieved GFLOP/s.
Needs the benchmark venv (Ultralytics): `make bench-venv`, then
    YOLO_OFFLINE=1 .venv-bench/bin/python benchmarks/latency.py [--quick]
`--quick`: 320 only, size s only, 5 runs.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from yolov9 import build_model
from yolov9.export.exporter import export
from yolov9.runtime import TorchBackend
from yolov9.export.quantize import quantize_int8

THREADS = 2


def ort_runner(path: Path) -> Callable[[np.ndarray], object]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = THREADS, 1
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})


def torch_runner(model: Callable[[torch.Tensor], object]) -> Callable[[np.ndarray], object]:
    def run(x: np.ndarray):
        with torch.inference_mode():
            return model(torch.from_numpy(x))
    return run


def calibration_files(folder: Path, count: int = 8) -> list[Path]:
    """Smooth random images (calibration data only sets activation ranges; latency does not depend on it)."""
    rng = np.random.default_rng(0)
    files = []
    for i in range(count):
        files.append(folder / f"calib{i}.jpg")
        cv2.imwrite(str(files[-1]), cv2.resize(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8), (640, 640)))
    return files


def ultralytics_contenders(size: str, imgsz: int, folder: Path) -> dict[str, Callable]:
    from ultralytics import YOLO

    peer = YOLO(f"yolov9{size}.yaml")
    fused = peer.model.fuse(verbose=False) if "verbose" in peer.model.fuse.__code__.co_varnames else peer.model.fuse()
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            onnx_path = YOLO(f"yolov9{size}.yaml").export(format="onnx", imgsz=imgsz, simplify=True)
    finally:
        os.chdir(cwd)
    return {"ultralytics torch fused": torch_runner(fused.float().eval()),
            "ultralytics onnx fp32": ort_runner(folder / Path(onnx_path).name)}


def our_contenders(size: str, imgsz: int, folder: Path) -> tuple[dict[str, Callable], float]:
    gelan = build_model(f"gelan-{size}").eval()
    fp32 = export(gelan, imgsz=imgsz, file=folder / f"gelan-{size}-{imgsz}.onnx", verbose=False)
    int8 = quantize_int8(fp32, folder / f"gelan-{size}-{imgsz}-int8.onnx", calibration_files(folder), (imgsz, imgsz))
    deployed = TorchBackend(gelan)
    gflops = deployed.model.info(imgsz)["gflops"]
    return {"ours torch fused (gelan)": torch_runner(deployed), "ours torch fused (yolov9 stripped)":
            torch_runner(TorchBackend(build_model(f"yolov9-{size}"))), "ours onnx fp32": ort_runner(fp32),
            "ours onnx int8": ort_runner(int8)}, gflops


def measure(contenders: dict[str, Callable], x: np.ndarray, runs: int, warmup: int) -> dict[str, float]:
    """Median ms per contender, interleaved: every round runs each contender once, in a rotated order."""
    for run in contenders.values():
        for _ in range(warmup):
            run(x)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for round_index in range(runs):
        shift = round_index % len(names)  # rotate the order so no contender always runs first
        for name in names[shift:] + names[:shift]:
            run = contenders[name]
            start = time.perf_counter()
            run(x)
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


PEER_OF = {"ours torch fused (gelan)": "ultralytics torch fused",
           "ours torch fused (yolov9 stripped)": "ultralytics torch fused",
           "ours onnx fp32": "ultralytics onnx fp32", "ours onnx int8": "ultralytics onnx fp32"}


def report(size: str, imgsz: int, medians: dict[str, float], gflops: float) -> None:
    print(f"\n== size {size}, {imgsz}x{imgsz}, batch 1, {THREADS} threads (median ms) ==")
    print(f"{'contender':<36}{'ms':>9}{'vs peer':>9}{'GFLOP/s':>9}")
    for name, ms in medians.items():
        peer = PEER_OF.get(name)
        ratio = f"{ms / medians[peer]:.2f}x" if peer else ""
        rate = f"{gflops / (ms / 1000):.1f}" if name.startswith("ours") else ""
        print(f"{name:<36}{ms:>9.1f}{ratio:>9}{rate:>9}")
    print(f"int8 / our fp32 onnx: {medians['ours onnx int8'] / medians['ours onnx fp32']:.2f}x   "
          f"(model: {gflops:.1f} GFLOPs fused)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="320 only, size s only, 5 runs")
    parser.add_argument("--sizes", nargs="+", default=None, help="model sizes (default: s c)")
    parser.add_argument("--imgsz", type=int, nargs="+", default=None, help="image sizes (default: 640 320)")
    parser.add_argument("--runs", type=int, default=None, help="timed rounds (default 20, quick 5)")
    args = parser.parse_args()
    sizes = args.sizes or (["s"] if args.quick else ["s", "c"])
    image_sizes = args.imgsz or ([320] if args.quick else [640, 320])
    runs = args.runs or (5 if args.quick else 20)
    torch.set_num_threads(THREADS)
    torch.set_flush_denormal(True)  # random-init activations shrink layer by layer into denormals (all contenders)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; runs {runs} after 2 warm-up runs")
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            for imgsz in image_sizes:
                folder = Path(tmp) / f"{size}{imgsz}"
                folder.mkdir()
                ours, gflops = our_contenders(size, imgsz, folder)
                contenders = {**ours, **ultralytics_contenders(size, imgsz, folder)}
                x = np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)
                report(size, imgsz, measure(contenders, x, runs, warmup=2), gflops)


if __name__ == "__main__":
    main()
