"""`yolov9 export --weights W --format onnx|openvino|tflite`: the stripped + fused model, optional NMS / fp16 / INT8,
checked in its own runtime against PyTorch."""
from __future__ import annotations

import argparse

from yolov9.commands.arguments import image_size, positive_int
from yolov9.export.exporter import FORMATS, export
from yolov9.runtime import load_model, require_trainable
from yolov9.export.onnx import DEFAULT_OPSET


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a model to ONNX, OpenVINO or TFLite (stripped, fused, optional "
                                             "NMS / fp16 / INT8)")
    p.add_argument("--weights", required=True, help="checkpoint (.pt, ours or official) or model YAML")
    p.add_argument("--format", default="onnx", choices=FORMATS,
                   help="onnx (ONNX Runtime), openvino (an IR folder), tflite (LiteRT; fixed shape, no --nms)")
    p.add_argument("--imgsz", type=positive_int, nargs="+", default=None,
                   help="input size h [w], multiples of the stride (default: the size the model was trained at, "
                        "else 640)")
    p.add_argument("--batch", type=positive_int, default=1, help="batch size of the exported input")
    p.add_argument("--dynamic", action="store_true", help="dynamic batch, height and width (onnx, openvino)")
    p.add_argument("--nms", action="store_true", help="append ONNX NonMaxSuppression (num_dets/boxes/scores/classes; "
                                                      "onnx, openvino)")
    p.add_argument("--conf", type=float, default=0.25, help="score threshold of the in-graph NMS")
    p.add_argument("--iou", type=float, default=0.45, help="IoU threshold of the in-graph NMS")
    p.add_argument("--max-det", type=positive_int, default=300, help="detections per image of the in-graph NMS")
    p.add_argument("--half", action="store_true", help="fp16: onnx traces in fp16 on CUDA (fp16 input); openvino and "
                                                       "tflite store fp16 weights (float input, half the file)")
    p.add_argument("--int8", action="store_true", help="also write an INT8 model calibrated on --data: onnx ORT QDQ, "
                                                       "openvino NNCF, tflite int8 (int8 input); the head stays float")
    p.add_argument("--data", default=None, help="dataset YAML or image folder for INT8 calibration")
    p.add_argument("--calib-images", type=positive_int, default=64, help="number of calibration images")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (>= {DEFAULT_OPSET})")
    p.add_argument("--file", default=None, help="output path, a folder for openvino (default: next to the weights, "
                                                 "named by size and variant, e.g. best-320-nms.onnx, "
                                                 "best-320_openvino_model)")
    p.add_argument("--force", action="store_true", help="replace the output file if it exists")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model = require_trainable(load_model(args.weights), "be exported again")
    imgsz = image_size(args.imgsz, model)
    path = export(model, format=args.format, imgsz=imgsz, batch=args.batch, dynamic=args.dynamic, nms=args.nms,
                  half=args.half, int8=args.int8, data=args.data, calib_images=args.calib_images, opset=args.opset,
                  conf=args.conf, iou=args.iou, max_det=args.max_det, file=args.file, force=args.force)
    print(f"exported {path}")
    return 0
