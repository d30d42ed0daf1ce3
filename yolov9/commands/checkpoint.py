"""`yolov9 convert IN OUT` (official -> ours) and `yolov9 strip IN OUT` (drop the PGI auxiliary branch)."""
from __future__ import annotations

import argparse

from yolov9.commands.arguments import writable_output
from yolov9.io.convert import OUTPUT_FORMATS, convert_checkpoint, strip_checkpoint


def register(subparsers) -> None:
    convert = subparsers.add_parser("convert", help="convert an official YOLOv9 checkpoint to the yolov9 format")
    convert.add_argument("source", help="official (or yolov9-format) checkpoint, e.g. yolov9-c.pt")
    convert.add_argument("target", help="output file (yolov9 format, loads with weights_only=True)")
    convert.add_argument("--force", action="store_true", help="replace the output file if it exists")
    convert.set_defaults(func=run_convert)

    strip = subparsers.add_parser("strip", help="drop the auxiliary branch: yolov9-X -> gelan-X inference model")
    strip.add_argument("source", help="yolov9-format or official checkpoint")
    strip.add_argument("target", help="output file")
    strip.add_argument("--force", action="store_true", help="replace the output file if it exists")
    strip.add_argument("--format", choices=OUTPUT_FORMATS, default="yolov9",
                       help="yolov9 (default) or official (the *-converted.pt layout the official code loads)")
    strip.set_defaults(func=run_strip)


def run_convert(args: argparse.Namespace) -> int:
    target = writable_output(args.target, args.source, args.force)
    print(f"wrote {convert_checkpoint(args.source, target)}")
    return 0


def run_strip(args: argparse.Namespace) -> int:
    target = writable_output(args.target, args.source, args.force)
    print(f"wrote {strip_checkpoint(args.source, target, format=args.format)} ({args.format} format)")
    return 0
