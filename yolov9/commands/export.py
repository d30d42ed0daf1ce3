"""`yolov9 export --weights W --format onnx`: stripped + fused ONNX, optional NMS / fp16 / INT8, verified."""
from __future__ import annotations

import argparse

from yolov9.export.exporter import FORMATS, export
from yolov9.export.onnx import DEFAULT_OPSET


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a model to ONNX (stripped, fused, optional NMS / INT8)")
    p.add_argument("--weights", required=True, help="checkpoint (.pt, ours or official) or model YAML")
    p.add_argument("--format", default="onnx", choices=FORMATS)
    p.add_argument("--imgsz", type=int, nargs="+", default=[640], help="input size h [w] (multiples of 32)")
    p.add_argument("--batch", type=int, default=1, help="batch size of the exported input")
    p.add_argument("--dynamic", action="store_true", help="dynamic batch, height and width")
    p.add_argument("--nms", action="store_true", help="append ONNX NonMaxSuppression (num_dets/boxes/scores/classes)")
    p.add_argument("--conf", type=float, default=0.25, help="score threshold of the in-graph NMS")
    p.add_argument("--iou", type=float, default=0.45, help="IoU threshold of the in-graph NMS")
    p.add_argument("--max-det", type=int, default=300, help="detections per image of the in-graph NMS")
    p.add_argument("--half", action="store_true", help="fp16 weights and input")
    p.add_argument("--int8", action="store_true", help="also write an INT8 (QDQ) model calibrated on --data")
    p.add_argument("--data", default=None, help="dataset YAML or image folder for INT8 calibration")
    p.add_argument("--calib-images", type=int, default=64, help="number of calibration images")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (>= {DEFAULT_OPSET})")
    p.add_argument("--file", default=None, help="output path (default: next to the weights)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    imgsz = args.imgsz[0] if len(args.imgsz) == 1 else tuple(args.imgsz[:2])
    path = export(args.weights, format=args.format, imgsz=imgsz, batch=args.batch, dynamic=args.dynamic, nms=args.nms,
                  half=args.half, int8=args.int8, data=args.data, calib_images=args.calib_images, opset=args.opset,
                  conf=args.conf, iou=args.iou, max_det=args.max_det, file=args.file)
    print(f"exported {path}")
    return 0
