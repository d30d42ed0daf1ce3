"""`yolov9 detect --weights W --source S`: annotated images / videos (+ txt, json, crops) in a run folder."""
from __future__ import annotations

import argparse
from pathlib import Path

from yolov9.engine.predictor import stream
from yolov9.engine.run_dir import increment_path


def register(subparsers) -> None:
    p = subparsers.add_parser("detect", help="run a detector on images, folders, globs, lists, videos or a webcam")
    p.add_argument("--weights", required=True, help="checkpoint (.pt), exported model (.onnx) or model YAML")
    p.add_argument("--source", required=True, help="image, folder, glob, .txt list, video or webcam index (0)")
    p.add_argument("--imgsz", type=int, nargs="+", default=[640], help="inference size (h [w]); .pt models only")
    p.add_argument("--conf", type=float, default=0.25, help="confidence threshold")
    p.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold")
    p.add_argument("--max-det", type=int, default=1000, help="maximum detections per image")
    p.add_argument("--classes", type=int, nargs="+", default=None, help="keep only these class indices")
    p.add_argument("--agnostic-nms", action="store_true", help="class-agnostic NMS")
    p.add_argument("--batch", type=int, default=1, help="images per forward pass")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--half", action="store_true", help="fp16 inference (PyTorch on CUDA)")
    p.add_argument("--save-txt", action="store_true", help="write YOLO txt labels")
    p.add_argument("--save-conf", action="store_true", help="append confidences to the txt labels")
    p.add_argument("--save-json", action="store_true", help="write COCO-style predictions.json")
    p.add_argument("--save-crop", action="store_true", help="write one crop per detection")
    p.add_argument("--nosave", action="store_true", help="do not write annotated images / videos")
    p.add_argument("--project", default="runs/detect", help="parent folder of the run folder")
    p.add_argument("--name", default="exp", help="run folder name")
    p.add_argument("--exist-ok", action="store_true", help="reuse an existing run folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    save_dir = None if args.nosave else increment_path(Path(args.project) / args.name, args.exist_ok)
    imgsz = args.imgsz[0] if len(args.imgsz) == 1 else tuple(args.imgsz[:2])
    total = 0
    for result in stream(args.weights, args.source, imgsz=imgsz, conf=args.conf, iou=args.iou,
                         max_det=args.max_det, classes=args.classes, agnostic=args.agnostic_nms, batch=args.batch,
                         device=args.device, half=args.half, save_dir=save_dir, save_txt=args.save_txt,
                         save_json=args.save_json, save_crop=args.save_crop, save_conf=args.save_conf):
        total += len(result)
    print(f"{total} detections" + (f"; results saved to {save_dir}" if save_dir else ""))
    return 0
