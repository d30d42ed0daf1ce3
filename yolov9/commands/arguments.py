"""Argument types and checks shared by the sub-commands: a bad value is one line naming the option."""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Optional, Sequence, Union

from yolov9.engine.train_state import select_device
from yolov9.errors import YOLOv9Error, warn


def add_run_folder_options(parser: argparse.ArgumentParser, project: str) -> None:
    """--project / --name / --exist-ok: the run folder <project>/<name>, numbered exp, exp2, ... unless --exist-ok."""
    parser.add_argument("--project", default=project, help="parent folder of the run folder")
    parser.add_argument("--name", default="exp", help="run folder name (exp, exp2, ... when it exists)")
    parser.add_argument("--exist-ok", action="store_true", help="reuse an existing run folder")


def add_inference_options(parser: argparse.ArgumentParser, conf: float, iou: float, max_det: int,
                          batch: int) -> None:
    """--imgsz / --batch / --conf / --iou / --max-det of the commands that run a model (val, detect)."""
    parser.add_argument("--imgsz", type=positive_int, nargs="+", default=None,
                        help="image size h [w] (default: the size the model was trained or exported at, else 640)")
    parser.add_argument("--batch", type=positive_int, default=batch, help="images per forward pass")
    parser.add_argument("--conf", type=float, default=conf, help="NMS confidence threshold")
    parser.add_argument("--iou", type=float, default=iou, help="NMS IoU threshold")
    parser.add_argument("--max-det", type=positive_int, default=max_det, help="maximum detections per image")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def checked_device(device: Optional[str]) -> str:
    """The device as given, after checking that it exists here (e.g. CUDA without a GPU is one clear error)."""
    return str(select_device(device))


def stride_multiple(imgsz: Union[int, Sequence[int]], stride: int) -> Union[int, tuple[int, ...]]:
    """Sizes rounded up to multiples of `stride`, with a warning when that changes them."""
    sizes = (imgsz,) if isinstance(imgsz, int) else tuple(imgsz)
    rounded = tuple(math.ceil(s / stride) * stride for s in sizes)
    if rounded != sizes:
        warn(f"--imgsz {' '.join(map(str, sizes))} is not a multiple of the model stride {stride}; "
             f"using {' '.join(map(str, rounded))}")
    return rounded[0] if isinstance(imgsz, int) else rounded


def image_size(given: Optional[Sequence[int]], model) -> Union[int, tuple[int, ...]]:
    """--imgsz as given (h [w]); else the size the model was trained / exported at (said on stdout); else 640."""
    from yolov9.api import DEFAULT_IMGSZ

    if given:
        return given[0] if len(given) == 1 else tuple(given[:2])
    if model.imgsz:
        print(f"imgsz {model.imgsz}: the size {getattr(model, 'source', 'the model')} was trained / exported at "
              "(--imgsz to change)")
    return model.imgsz or DEFAULT_IMGSZ


def writable_output(target: Union[str, Path], source: Union[str, Path, None] = None, force: bool = False) -> Path:
    """`target` if writing it loses nothing: never the input file itself, and an existing file or non-empty folder
    only with --force."""
    target = Path(target)
    if source is not None and Path(source).exists() and target.exists() and target.resolve() == Path(source).resolve():
        raise YOLOv9Error(f"{target}: the output would replace the input; choose another output path")
    occupied = target.is_file() or (target.is_dir() and any(target.iterdir()))
    if occupied and not force:
        raise YOLOv9Error(f"{target}: already exists; choose another output path or pass --force to replace it")
    return target
