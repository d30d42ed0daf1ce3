"""The `yolov9` command: sub-commands are thin wrappers over the Python API.

Each sub-command lives in `yolov9/commands/<name>.py` with `register(subparsers)`; errors we detect are
printed as one line (`yolov9: error: ...`) with exit status 2, never as a stack trace.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from yolov9.version import __version__
from yolov9.errors import YOLOv9Error

COMMANDS = ("info", "dataset", "data", "checkpoint", "detect", "export", "train", "val", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yolov9", description="Train, evaluate and deploy YOLOv9 detectors.")
    parser.add_argument("--version", action="version", version=f"yolov9 {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"yolov9.commands.{name}").register(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except YOLOv9Error as e:
        print(f"yolov9: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("yolov9: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
