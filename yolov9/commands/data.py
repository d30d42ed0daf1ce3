"""`yolov9 data check|show|convert`: validate a dataset, preview augmented samples, convert COCO json to YOLO txt."""
from __future__ import annotations

import argparse
from pathlib import Path

from yolov9.commands.arguments import positive_int, writable_output
from yolov9.data.formats import coco_to_yolo
from yolov9.data.inspect import check_dataset, show_samples


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="check, preview or convert a dataset")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="scan every image and label; print the report and label statistics")
    check.add_argument("data", help="dataset YAML")
    check.add_argument("--strict", action="store_true", help="any problem is an error (exit status 2)")
    check.add_argument("--max-lines", type=int, default=50, help="problem lines to print per split")
    check.set_defaults(func=run_check)
    show = sub.add_parser("show", help="write a PNG grid of augmented training samples with their boxes")
    show.add_argument("data", help="dataset YAML")
    show.add_argument("--n", type=positive_int, default=16, help="number of samples")
    show.add_argument("--imgsz", type=positive_int, default=640, help="sample size in pixels")
    show.add_argument("--split", default="train")
    show.add_argument("--seed", type=int, default=0)
    show.add_argument("--out", default="samples.png", help="PNG (or JPEG) file to write")
    show.add_argument("--force", action="store_true", help="replace the output file if it exists")
    show.set_defaults(func=run_show)
    convert = sub.add_parser("convert", help="convert a COCO json to a YOLO txt dataset")
    convert.add_argument("source", help="COCO instances_<split>.json")
    convert.add_argument("--from", dest="source_format", choices=["coco"], default="coco")
    convert.add_argument("--to", dest="target_format", choices=["yolo"], default="yolo")
    convert.add_argument("--images", default=None, help="image folder (default: found next to the json)")
    convert.add_argument("--out", required=True, help="output folder (images/, labels/, data.yaml)")
    convert.add_argument("--force", action="store_true", help="write into a non-empty output folder")
    convert.set_defaults(func=run_convert)


def run_check(args: argparse.Namespace) -> int:
    check_dataset(args.data, strict=args.strict, max_lines=args.max_lines)
    return 0


def run_show(args: argparse.Namespace) -> int:
    out = writable_output(args.out, force=args.force)
    path = show_samples(args.data, out, n=args.n, imgsz=args.imgsz, split=args.split, seed=args.seed)
    print(f"wrote {path}")
    return 0


def run_convert(args: argparse.Namespace) -> int:
    out = writable_output(args.out, force=args.force)
    yaml_file = coco_to_yolo(args.source, out, Path(args.images) if args.images else None)
    print(f"wrote {yaml_file}")
    return 0
