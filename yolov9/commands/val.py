"""`yolov9 val MODEL --data DATA.yaml`: P, R, mAP50, mAP50-95 table, speed, optional COCO JSON and plots."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from yolov9.commands.arguments import add_inference_options, add_run_folder_options, checked_device, image_size
from yolov9.engine.run_dir import increment_path


def register(subparsers) -> None:
    p = subparsers.add_parser("val", help="validate a checkpoint, exported file or model config on a dataset split",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", help="checkpoint (.pt, ours or official), exported .onnx, or model config")
    p.add_argument("--data", required=True, help="dataset YAML")
    add_inference_options(p, conf=0.001, iou=0.7, max_det=300, batch=32)
    p.add_argument("--half", action="store_true", help="FP16 inference")
    p.add_argument("--branch", type=int, default=None, help="head branch to evaluate (default: the main one)")
    p.add_argument("--split", default="val", choices=("train", "val", "test"), help="dataset split")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--workers", type=int, default=2, help="data loader worker processes")
    p.add_argument("--single-cls", action="store_true", help="treat every class as one (agnostic NMS)")
    p.add_argument("--loss", action="store_true", help="also report the validation loss of every head branch")
    p.add_argument("--save-json", action="store_true", help="write COCO-format predictions.json (RLE masks for "
                                                            "segmentation models)")
    p.add_argument("--coco-json", default=None, help="COCO GT json: also score predictions.json with pycocotools")
    p.add_argument("--no-plots", action="store_true", help="no PR / F1 curves and confusion matrix")
    add_run_folder_options(p, "runs/val")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from yolov9.api import YOLOv9

    device = checked_device(args.device)
    model = YOLOv9(args.model)
    imgsz = image_size(args.imgsz, model)
    results = model.val(
        data=args.data, imgsz=imgsz if isinstance(imgsz, int) else max(imgsz), batch=args.batch, conf=args.conf,
        iou=args.iou, max_det=args.max_det, half=args.half, branch=args.branch, split=args.split, device=device,
        workers=args.workers, single_cls=args.single_cls, save_json=args.save_json or bool(args.coco_json),
        plots=not args.no_plots, save_dir=increment_path(Path(args.project) / args.name, args.exist_ok),
        loss=args.loss)
    if args.coco_json:
        for iou_type in ("bbox", "segm") if model.task == "segment" else ("bbox",):
            print_pycocotools(args.coco_json, results["json"], iou_type)
    return 0


def print_pycocotools(ground_truth: str, predictions, iou_type: str = "bbox") -> None:
    """Score the predictions with the official COCO tool (needs pycocotools installed)."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        from yolov9.errors import YOLOv9Error

        raise YOLOv9Error('--coco-json needs pycocotools: pip install pycocotools') from None
    coco_gt = COCO(ground_truth)
    print(f"pycocotools {iou_type}:")
    evaluator = COCOeval(coco_gt, coco_gt.loadRes(json.loads(open(predictions).read())), iou_type)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
