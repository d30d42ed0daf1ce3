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

COMMANDS = ("info", "dataset", "data", "checkpoint", "detect", "track", "export", "benchmark", "train", "val", "demo")


class Parser(argparse.ArgumentParser):
    """argparse with errors as one line (and exit status 2), like every other error of the command."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="yolov9", description="Train, evaluate and deploy YOLOv9 models.")
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
    except KeyboardInterrupt as e:
        print("yolov9: interrupted" + (f"; {e.args[0]}" if e.args else ""), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
