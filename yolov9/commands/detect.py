"""`yolov9 detect --weights W --source S`: annotated images / videos (+ txt, json, crops) in a run folder;
`--slice S` runs large images as tiles plus the whole image. `add_predict_options` / `prepare` serve `track` too."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from yolov9.commands.arguments import (add_inference_options, add_run_folder_options, checked_device, image_size,
                                       positive_int, stride_multiple)
from yolov9.engine.predictor import stream
from yolov9.engine.run_dir import increment_path
from yolov9.engine.sources import DEFAULT_TIMEOUT, Source, load_source
from yolov9.export.cached import BACKENDS, cached_backend
from yolov9.runtime import load_model

SOURCES_HELP = ("image, folder, glob, .txt list, video, stream URL (rtsp://, http(s)://, ...), .streams list (one URL "
                "per line) or webcam index (0)")


def add_predict_options(p: argparse.ArgumentParser, conf: float) -> None:
    """The options of the commands that run a model on sources (detect, track)."""
    p.add_argument("--weights", required=True, help="checkpoint (.pt), exported model (.onnx) or model YAML")
    p.add_argument("--source", required=True, help=SOURCES_HELP)
    add_inference_options(p, conf=conf, iou=0.45, max_det=1000, batch=1)
    p.add_argument("--classes", type=int, nargs="+", default=None, help="keep only these class indices")
    p.add_argument("--agnostic-nms", action="store_true", help="class-agnostic NMS")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--half", action="store_true", help="fp16 inference (PyTorch on CUDA)")
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="runtime of a .pt: auto = on the CPU the fastest installed (OpenVINO, else ONNX Runtime, "
                        "converted once and cached next to the weights), else PyTorch")
    p.add_argument("--vid-stride", type=positive_int, default=1, help="use every N-th frame of videos and streams")
    p.add_argument("--stream-timeout", type=float, default=DEFAULT_TIMEOUT,
                   help="seconds without a frame before a stream counts as dead (an error)")
    p.add_argument("--save-txt", action="store_true", help="write YOLO txt labels")
    p.add_argument("--save-conf", action="store_true", help="append confidences to the txt labels")
    p.add_argument("--save-json", action="store_true", help="write COCO-style predictions.json")
    p.add_argument("--save-crop", action="store_true", help="write one crop per detection")
    p.add_argument("--nosave", action="store_true", help="do not write annotated images / videos")
    p.add_argument("--retina-masks", action="store_true",
                   help="segmentation: masks computed at the original image resolution (slower, finer)")


def register(subparsers) -> None:
    p = subparsers.add_parser("detect", help="run a detector on images, folders, globs, lists, videos, streams or a "
                                             "webcam")
    add_predict_options(p, conf=0.25)
    p.add_argument("--slice", type=positive_int, default=None, metavar="SIZE",
                   help="sliced inference: SIZE x SIZE tiles (original pixels) plus the whole image, merged")
    p.add_argument("--slice-overlap", type=float, default=0.2, help="fraction of a tile shared with its neighbours")
    add_run_folder_options(p, "runs/detect")
    p.set_defaults(func=run)


def prepare(args: argparse.Namespace) -> tuple[Any, Source, Any, dict]:
    """The model, the source, the run folder (None with --nosave) and the keyword options of `stream`."""
    device = checked_device(args.device)
    model = load_model(args.weights, device=device)
    imgsz = stride_multiple(image_size(args.imgsz, model), int(torch.as_tensor(model.stride).max()))
    frames = load_source(args.source, args.vid_stride, args.stream_timeout)
    model = cached_backend(model, device, args.half, args.backend)
    save_dir = None if args.nosave else increment_path(Path(args.project) / args.name, args.exist_ok)
    options = dict(imgsz=imgsz, conf=args.conf, iou=args.iou, max_det=args.max_det, classes=args.classes,
                   agnostic=args.agnostic_nms, batch=args.batch, device=device, half=args.half, save_dir=save_dir,
                   save_txt=args.save_txt, save_json=args.save_json, save_crop=args.save_crop,
                   save_conf=args.save_conf, retina_masks=args.retina_masks)
    return model, frames, save_dir, options


def summary(counted: str, frames: Source, save_dir: Any) -> str:
    """The last line a command prints: what it counted, skipped images, where the results are."""
    skipped = f"; {len(frames.skipped)} unreadable image(s) skipped" if frames.skipped else ""
    return f"{counted}{skipped}" + (f"; results saved to {save_dir}" if save_dir else "")


def run(args: argparse.Namespace) -> int:
    model, frames, save_dir, options = prepare(args)
    total = sum(len(result) for result in stream(model, frames, slice_size=args.slice,
                                                 slice_overlap=args.slice_overlap, **options))
    print(summary(f"{total} detections", frames, save_dir))
    return 0
