"""Inference latency, batch 1, CPU: ours vs Ultralytics yolov9s/c in every runtime (PyTorch fused, ONNX Runtime fp32
and INT8, OpenVINO fp32 and INT8, TFLite/LiteRT fp32 and INT8), plus end to end: a real photo as a 1280x720 frame through each
predictor (pre-process + inference + NMS).

One process, one torch / onnxruntime / openvino / ai-edge-litert for every contender; 2 threads in every runtime;
denormals flushed to zero where the runtime lets us (torch, ORT, OpenVINO: random-init activations shrink into
denormals, which would time the FPU's slow path instead of the model); ORT's idle threads do not spin (spinning
threads of one session would steal the cores from whichever contender runs next).
Model rows run each exported graph raw in its runtime (the same runner for ours and Ultralytics' file); ours in
PyTorch as our predictor runs it (TorchBackend: stripped, fused, channels-last on CPU), Ultralytics' as its
predictor runs it (fused, eager, NCHW). INT8: ours as `yolov9 export --int8` writes it (head float), Ultralytics'
as its `int8=True` export (calibrated on a copy of the trees dataset; its YAML's `path` made absolute).
End-to-end rows: our Predictor over the backend `detect` would use (PyTorch; ONNX and OpenVINO dynamic-shape, i.e.
the minimal letterbox 384x640 at 640; TFLite fixed, square) vs Ultralytics' `YOLO(file).predict` of its default
exports (fixed square shapes except PyTorch).
Runs are interleaved (one run of each contender per round, rotated) and the median per contender is reported, with
the ratio to the matching Ultralytics contender and our achieved GFLOP/s.
Needs the benchmark venv (Ultralytics, openvino, nncf, litert-torch): `make bench-venv`, then
    YOLO_OFFLINE=1 .venv-bench/bin/python benchmarks/latency.py [--quick] [--runtimes torch onnx openvino tflite]
`--quick`: 320 only, size s only, 5 runs.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
import yaml

from yolov9 import build_model
from yolov9.engine.predictor import Predictor
from yolov9.engine.sources import load_source
from yolov9.export.exporter import FORMATS, Exporter, export
from yolov9.export.quantize import quantize_int8
from yolov9.runtime import TorchBackend
from yolov9.runtime.onnx_backend import OnnxBackend
from yolov9.runtime.openvino_backend import OpenVinoBackend
from yolov9.runtime.tflite_backend import TFLiteBackend

THREADS = 2
RUNTIMES = ("torch", "onnx", "openvino", "tflite")
TREES = Path(__file__).resolve().parents[1] / "datasets" / "trees"
FRAME = (720, 1280)  # the end-to-end frame (h, w)
OV_CONFIG = {"INFERENCE_NUM_THREADS": THREADS, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
             "CPU_DENORMALS_OPTIMIZATION": True, "INFERENCE_PRECISION_HINT": "f32"}  # fp32 rows are fp32 (not bf16)


def ort_runner(path: Path) -> Callable[[np.ndarray], object]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = THREADS, 1
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})


def ov_runner(path: Path) -> Callable[[np.ndarray], object]:
    """An IR (its folder or .xml) compiled for latency, one reused infer request."""
    import openvino as ov

    xml = path if path.suffix == ".xml" else next(Path(path).glob("*.xml"))
    request = ov.Core().compile_model(str(xml), "CPU", OV_CONFIG).create_infer_request()
    return lambda x: request.infer({0: x})


def tflite_runner(path: Path) -> Callable[[np.ndarray], object]:
    """A .tflite in the LiteRT interpreter (XNNPACK), NHWC or NCHW input as the file has it, int8 input quantized."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=THREADS)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    channels_last = detail["shape"][-1] == 3

    def run(x: np.ndarray):
        array = x.transpose(0, 2, 3, 1) if channels_last else x
        if detail["dtype"] != np.float32:
            scale, zero = detail["quantization"]
            array = np.clip(np.round(array / scale + zero), -128, 127).astype(detail["dtype"])
        interpreter.set_tensor(detail["index"], np.ascontiguousarray(array))
        interpreter.invoke()
    return run


def torch_runner(model: Callable[[torch.Tensor], object]) -> Callable[[np.ndarray], object]:
    def run(x: np.ndarray):
        with torch.inference_mode():
            return model(torch.from_numpy(x))
    return run


def calibration_folder(folder: Path, count: int = 8) -> Path:
    """Smooth random images (calibration data only sets activation ranges; latency does not depend on it)."""
    rng = np.random.default_rng(0)
    (folder / "calib").mkdir()
    for i in range(count):
        cv2.imwrite(str(folder / "calib" / f"calib{i}.jpg"),
                    cv2.resize(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8), (640, 640)))
    return folder / "calib"


def trees_copy(folder: Path) -> Path:
    """The trees dataset copied into `folder` with an absolute `path:` (Ultralytics resolves `path: .` against the
    working folder, and writes its own labels/*.cache where ours lies)."""
    shutil.copytree(TREES / "images", folder / "trees" / "images")
    shutil.copytree(TREES / "labels", folder / "trees" / "labels", ignore=shutil.ignore_patterns("*.cache"))
    config = yaml.safe_load((TREES / "trees.yaml").read_text())
    config["path"] = str(folder / "trees")
    (folder / "trees.yaml").write_text(yaml.safe_dump(config))
    return folder / "trees.yaml"


def ultralytics_exports(size: str, imgsz: int, folder: Path, runtimes: tuple[str, ...]) -> dict[str, str]:
    """Ultralytics' own exports of yolov9{size} (random init): contender name -> file."""
    from ultralytics import YOLO

    data = str(trees_copy(folder))
    wanted = {"onnx fp32": ("onnx", dict(format="onnx", simplify=True)),
              "openvino fp32": ("openvino", dict(format="openvino")),
              "openvino int8": ("openvino", dict(format="openvino", int8=True, data=data)),
              "tflite fp32": ("tflite", dict(format="tflite")),
              "tflite int8": ("tflite", dict(format="tflite", int8=True, data=data))}
    files = {}
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        for name, (runtime, options) in wanted.items():
            if runtime in runtimes:
                with contextlib.redirect_stdout(io.StringIO()):
                    exported = YOLO(f"yolov9{size}.yaml").export(imgsz=imgsz, **options)
                files[f"ultralytics {name}"] = str(Path(exported).resolve())  # relative to `folder`
    finally:
        os.chdir(cwd)
    return files


RUNNER_OF = {"onnx": ort_runner, "openvino": ov_runner, "tflite": tflite_runner}


def ultralytics_contenders(size: str, imgsz: int, folder: Path, runtimes: tuple[str, ...]
                           ) -> tuple[dict[str, Callable], dict[str, Callable]]:
    """(model contenders, end-to-end contenders) of Ultralytics."""
    from ultralytics import YOLO

    peer = YOLO(f"yolov9{size}.yaml")
    fused = peer.model.fuse(verbose=False) if "verbose" in peer.model.fuse.__code__.co_varnames else peer.model.fuse()
    files = ultralytics_exports(size, imgsz, folder, runtimes)
    models = {"ultralytics torch fused": torch_runner(fused.float().eval())} if "torch" in runtimes else {}
    models.update({name: RUNNER_OF[name.split()[1]](Path(path)) for name, path in files.items()})
    predictors = {"ultralytics torch": YOLO(f"yolov9{size}.yaml")} if "torch" in runtimes else {}
    predictors.update({name.rsplit(" ", 1)[0]: YOLO(path, task="detect") for name, path in files.items()
                       if name.endswith("fp32")})
    end_to_end = {name: (lambda frame, p=p: p.predict(frame, imgsz=imgsz, verbose=False))
                  for name, p in predictors.items()}
    return models, end_to_end


def our_contenders(size: str, imgsz: int, folder: Path, runtimes: tuple[str, ...]
                   ) -> tuple[dict[str, Callable], dict[str, Callable], float]:
    """(model contenders, end-to-end contenders, GFLOPs of the fused model) of ours."""
    gelan = build_model(f"gelan-{size}").eval()
    deployed = TorchBackend(gelan)
    gflops = deployed.model.info(imgsz)["gflops"]
    calib = calibration_folder(folder)
    stem = folder / f"gelan-{size}-{imgsz}"
    models: dict[str, Callable] = {}
    backends: dict[str, object] = {}
    if "torch" in runtimes:
        models["ours torch fused (gelan)"] = torch_runner(deployed)
        models["ours torch fused (yolov9 stripped)"] = torch_runner(TorchBackend(build_model(f"yolov9-{size}")))
        backends["ours torch"] = deployed
    if "onnx" in runtimes:
        fp32 = export(gelan, imgsz=imgsz, file=f"{stem}.onnx", verbose=False)
        int8 = quantize_int8(fp32, Path(f"{stem}-int8.onnx"), sorted(calib.iterdir()), (imgsz, imgsz))
        models.update({"ours onnx fp32": ort_runner(fp32), "ours onnx int8": ort_runner(int8)})
        dynamic = export(gelan, imgsz=imgsz, dynamic=True, file=f"{stem}-dynamic.onnx", verbose=False)
        backends["ours onnx"] = OnnxBackend(dynamic, threads=THREADS)
    for runtime, backend_type in (("openvino", OpenVinoBackend), ("tflite", TFLiteBackend)):
        if runtime in runtimes:
            exporter = Exporter(gelan, runtime, imgsz=imgsz, int8=True, data=calib, check=False, verbose=False,
                                file=f"{stem}{FORMATS[runtime].suffix}")
            exporter.run()
            models.update({f"ours {runtime} fp32": RUNNER_OF[runtime](exporter.file),
                           f"ours {runtime} int8": RUNNER_OF[runtime](exporter.int8_file)})
            path = exporter.file if runtime == "tflite" else export(
                gelan, runtime, imgsz=imgsz, dynamic=True, file=f"{stem}-dynamic{FORMATS[runtime].suffix}",
                verbose=False)
            backends[f"ours {runtime}"] = backend_type(path, threads=THREADS)
    end_to_end = {name: predictor_runner(backend, imgsz) for name, backend in backends.items()}
    return models, end_to_end, gflops


def real_frame() -> np.ndarray:
    """A real photo as a 1280x720 BGR frame: the first val tile of the bundled trees set, resized."""
    tile = cv2.imread(str(sorted((TREES / "images" / "val").iterdir())[0]))
    return cv2.resize(tile, FRAME[::-1], interpolation=cv2.INTER_LINEAR)


def predictor_runner(backend, imgsz: int) -> Callable[[np.ndarray], object]:
    """One frame through our Predictor (letterbox, backend, NMS, Results)."""
    predictor = Predictor(backend, imgsz=imgsz)
    return lambda frame: list(predictor.run(load_source(frame)))


def measure(contenders: dict[str, Callable], x, runs: int, warmup: int) -> dict[str, float]:
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


def peer_of(name: str) -> str:
    """The Ultralytics contender a row of ours is compared with (INT8 rows with Ultralytics' INT8 where it has
    one; our ONNX INT8 with its ONNX fp32, which it does not export as INT8)."""
    if name.startswith("ours torch"):
        return "ultralytics torch fused" if "(" in name else "ultralytics torch"
    if name == "ours onnx int8":
        return "ultralytics onnx fp32"
    return name.replace("ours", "ultralytics")


def report(title: str, medians: dict[str, float], gflops: float = 0.0) -> None:
    print(f"\n== {title} (median ms) ==")
    print(f"{'contender':<36}{'ms':>9}{'vs peer':>9}{'GFLOP/s':>9}")
    for name, ms in medians.items():
        peer = peer_of(name)
        ratio = f"{ms / medians[peer]:.2f}x" if name.startswith("ours") and peer in medians else ""
        rate = f"{gflops / (ms / 1000):.1f}" if name.startswith("ours") and gflops else ""
        print(f"{name:<36}{ms:>9.1f}{ratio:>9}{rate:>9}")
    for runtime in ("onnx", "openvino", "tflite"):
        if f"ours {runtime} int8" in medians:
            print(f"{runtime} int8 / our {runtime} fp32: "
                  f"{medians[f'ours {runtime} int8'] / medians[f'ours {runtime} fp32']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="320 only, size s only, 5 runs")
    parser.add_argument("--sizes", nargs="+", default=None, help="model sizes (default: s c)")
    parser.add_argument("--imgsz", type=int, nargs="+", default=None, help="image sizes (default: 640 320)")
    parser.add_argument("--runs", type=int, default=None, help="timed rounds (default 20, quick 5)")
    parser.add_argument("--runtimes", nargs="+", choices=RUNTIMES, default=list(RUNTIMES), help="runtimes to time")
    args = parser.parse_args()
    sizes = args.sizes or (["s"] if args.quick else ["s", "c"])
    image_sizes = args.imgsz or ([320] if args.quick else [640, 320])
    runs = args.runs or (5 if args.quick else 20)
    runtimes = tuple(args.runtimes)
    torch.set_num_threads(THREADS)
    torch.set_flush_denormal(True)  # random-init activations shrink layer by layer into denormals (all contenders)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; runs {runs} after 2 warm-up runs")
    frame = real_frame()
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            for imgsz in image_sizes:
                folder = Path(tmp) / f"{size}{imgsz}"
                folder.mkdir()
                ours, ours_e2e, gflops = our_contenders(size, imgsz, folder, runtimes)
                peers, peers_e2e = ultralytics_contenders(size, imgsz, folder, runtimes)
                x = np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)
                report(f"size {size}, {imgsz}x{imgsz}, batch 1, {THREADS} threads; model: {gflops:.1f} GFLOPs fused",
                       measure({**ours, **peers}, x, runs, warmup=2), gflops)
                report(f"size {size}, end to end: one {FRAME[1]}x{FRAME[0]} frame at imgsz {imgsz}",
                       measure({**ours_e2e, **peers_e2e}, frame, runs, warmup=2))


if __name__ == "__main__":
    main()
