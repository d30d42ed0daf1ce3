"""`yolov9 benchmark --weights W --data D [--imgsz S] [--int8]`: every deployment format, exported from W into a run
folder and validated on D's val split at one square size, batch 1 (as a deployed model runs): file size, mAP50-95,
pre-process / inference / NMS ms per image. A table, and `benchmark.json` next to the exported files.

Every format runs the same square letterbox (PyTorch too), so the rows differ only by the runtime. Formats whose
packages are missing are listed as "not installed"; a format that fails to export or run is listed with the error.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from yolov9.commands.arguments import add_run_folder_options, checked_device, positive_int
from yolov9.engine.run_dir import increment_path
from yolov9.engine.validator import validate
from yolov9.export.exporter import FORMATS, Exporter
from yolov9.io.atomic import atomic_write_bytes
from yolov9.runtime import Backend, TorchBackend, load_model, require_trainable

ALL_FORMATS = ("torch", *FORMATS)
COLUMNS = (("format", "format", 14), ("size_mb", "size MB", 9), ("mAP50-95", "mAP50-95", 10),
           ("mask/mAP50-95", "mask mAP50-95", 15), ("preprocess", "pre ms", 8), ("inference", "infer ms", 10),
           ("nms", "NMS ms", 8), ("status", "  status", 0))


def register(subparsers) -> None:
    p = subparsers.add_parser("benchmark", help="export to every format, then size, mAP and speed of each")
    p.add_argument("--weights", required=True, help="checkpoint (.pt, ours or official) or model YAML")
    p.add_argument("--data", required=True, help="dataset YAML (its val split is measured; train calibrates INT8)")
    p.add_argument("--imgsz", type=positive_int, default=None,
                   help="square input size (default: the size the model was trained at, else 640)")
    p.add_argument("--formats", nargs="+", choices=ALL_FORMATS, default=list(ALL_FORMATS), help="formats to measure")
    p.add_argument("--int8", action="store_true", help="also the INT8 variant of each exported format")
    p.add_argument("--calib-images", type=positive_int, default=64, help="INT8 calibration images")
    p.add_argument("--device", default="cpu", help="device of the PyTorch row (the files run on the CPU)")
    p.add_argument("--workers", type=int, default=2, help="data loader worker processes")
    add_run_folder_options(p, "runs/benchmark")
    p.set_defaults(func=run)


def benchmark(weights: str, data: str, save_dir: Path, imgsz: Optional[int] = None,
              formats: Sequence[str] = ALL_FORMATS, int8: bool = False, calib_images: int = 64, device: str = "cpu",
              workers: int = 2) -> dict[str, Any]:
    """{weights, data, imgsz, device, rows}: one row per format (and INT8 variant) with status, file, size_mb,
    mAP50, mAP50-95 (+ the mask metrics of segmentation models) and per-image speed in ms; the exported files are
    written into `save_dir`."""
    model = require_trainable(load_model(weights), "be benchmarked")
    imgsz = imgsz or model.imgsz or 640
    stem = Path(str(getattr(model, "source", None) or model.yaml.get("yaml_file", "model"))).stem
    measure = dict(data=data, imgsz=imgsz, workers=workers)
    rows = []
    for name in formats:
        if name == "torch":
            backend = TorchBackend(model, device)
            backend.fixed_shape = (imgsz, imgsz)  # the exported files' square letterbox, not rect batches
            rows.append(_measure("torch", backend, Path(weights) if Path(weights).is_file() else None, **measure))
            continue
        fmt = FORMATS[name]
        variants = [name] + ([f"{name} int8"] if int8 else [])
        if fmt.missing():
            rows += [{"format": v, "status": f'not installed (pip install "yolov9[{fmt.extra}]")'} for v in variants]
            continue
        try:
            exporter = Exporter(model, name, imgsz=imgsz, int8=int8, data=data, calib_images=calib_images,
                                file=save_dir / f"{stem}-{imgsz}{fmt.suffix}", check=False, verbose=False)
            exporter.run()
        except Exception as e:  # a format that cannot export this model is a row of the table, not the end
            rows += [{"format": v, "status": f"export failed: {_reason(e)}"} for v in variants]
            continue
        for variant, path in zip(variants, (exporter.file, exporter.int8_file)):
            rows.append(_measure(variant, None, path, **measure))
    return {"weights": str(weights), "data": str(data), "imgsz": imgsz, "device": str(device), "rows": rows}


def _measure(name: str, backend: Optional[Backend], path: Optional[Path], data: str, imgsz: int,
             workers: int) -> dict[str, Any]:
    """Validate one backend (or the file at `path`): its row."""
    row: dict[str, Any] = {"format": name, "file": str(path) if path else None,
                           "size_mb": _size(path) / 2**20 if path else None}
    try:
        backend = backend or load_model(path)
        backend(torch.zeros(1, 3, imgsz, imgsz))  # warm-up: first runs compile kernels and allocate buffers
        metrics = validate(backend, data, imgsz=imgsz, batch=1, workers=workers, plots=False, verbose=False)
    except Exception as e:  # one format failing to run is a row of the table
        return {**row, "status": f"failed: {_reason(e)}"}
    scores = {k: float(v) for k, v in metrics.items() if k.endswith(("mAP50", "mAP50-95"))}
    return {**row, "status": "ok", **scores, **metrics["speed_ms"]}


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def _reason(error: Exception) -> str:
    return f"{type(error).__name__}: {str(error).strip().splitlines()[0][:160] if str(error).strip() else ''}"


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a fixed-width table: blank where a row has no value; the mask column for segmentation only."""
    columns = [c for c in COLUMNS if c[0] != "mask/mAP50-95" or any(c[0] in row for row in rows)]

    def cell(value: Any, key: str, width: int) -> str:
        text = "" if value is None else f"{value:.4f}" if "mAP" in key else \
            f"{value:.1f}" if isinstance(value, float) else str(value)
        return f"{text:<{width}}" if key == "format" else f"  {text}" if key == "status" else f"{text:>{width}}"

    lines = ["".join(f"{title:<{w}}" if key == "format" else f"{title:>{w}}" for key, title, w in columns)]
    lines += ["".join(cell(row.get(key), key, w) for key, _, w in columns) for row in rows]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    device = checked_device(args.device)
    save_dir = increment_path(Path(args.project) / args.name, args.exist_ok)
    save_dir.mkdir(parents=True, exist_ok=True)
    report = benchmark(args.weights, args.data, save_dir, args.imgsz, args.formats, args.int8, args.calib_images,
                       device, args.workers)
    print(f"benchmark of {args.weights} on {args.data} (val split), {report['imgsz']}x{report['imgsz']}, batch 1:")
    print(table(report["rows"]))
    path = atomic_write_bytes(save_dir / "benchmark.json", json.dumps(report, indent=2).encode())
    print(f"results saved to {path}")
    return 0
