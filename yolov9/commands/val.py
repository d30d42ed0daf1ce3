"""`yolov9 val MODEL --data DATA.yaml`: P, R, mAP50, mAP50-95 table, speed, optional COCO JSON and plots."""
from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser("val", help="validate a checkpoint (or model config) on a dataset split")
    p.add_argument("model", help="checkpoint (.pt, ours or official) or model config")
    p.add_argument("--data", required=True, help="dataset YAML")
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--conf", type=float, default=0.001, help="NMS confidence threshold")
    p.add_argument("--iou", type=float, default=0.7, help="NMS IoU threshold")
    p.add_argument("--max-det", type=int, default=300)
    p.add_argument("--half", action="store_true", help="FP16 inference")
    p.add_argument("--branch", type=int, default=None, help="head branch to evaluate (default: the main one)")
    p.add_argument("--split", default="val", choices=("train", "val", "test"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--single-cls", action="store_true", help="treat every class as one (agnostic NMS)")
    p.add_argument("--save-json", action="store_true", help="write COCO-format predictions.json")
    p.add_argument("--coco-json", default=None, help="COCO GT json: also score predictions.json with pycocotools")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--save-dir", default="runs/val")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from yolov9.api import YOLOv9

    results = YOLOv9(args.model).val(
        data=args.data, imgsz=args.imgsz, batch=args.batch, conf=args.conf, iou=args.iou, max_det=args.max_det,
        half=args.half, branch=args.branch, split=args.split, device=args.device, workers=args.workers,
        single_cls=args.single_cls, save_json=args.save_json or bool(args.coco_json), plots=not args.no_plots,
        save_dir=args.save_dir)
    if args.coco_json:
        print_pycocotools(args.coco_json, results["json"])
    return 0


def print_pycocotools(ground_truth: str, predictions) -> None:
    """Score the predictions with the official COCO tool (needs pycocotools installed)."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        from yolov9.errors import YOLOv9Error

        raise YOLOv9Error("--coco-json needs pycocotools: pip install pycocotools") from None
    coco_gt = COCO(ground_truth)
    evaluator = COCOeval(coco_gt, coco_gt.loadRes(json.loads(open(predictions).read())), "bbox")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
