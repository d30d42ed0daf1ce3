"""File-to-file operations behind `yolov9 convert` and `yolov9 strip`."""
from __future__ import annotations

from pathlib import Path
from typing import Union

import torch

from yolov9.errors import CheckpointError
from yolov9.io.checkpoint import load_model_and_dtype, save_checkpoint
from yolov9.io.official_writer import save_official
from yolov9.models import strip_auxiliary

PathLike = Union[str, Path]
OUTPUT_FORMATS = ("yolov9", "official")


def convert_checkpoint(source: PathLike, target: PathLike) -> Path:
    """Official (or our) checkpoint -> our format, keeping the file's precision (EMA weights if present)."""
    model, dtype = load_model_and_dtype(source)
    return save_checkpoint(target, model, half=dtype == torch.float16)


def strip_checkpoint(source: PathLike, target: PathLike, format: str = "yolov9") -> Path:
    """yolov9-X -> the gelan-X-shaped inference model (auxiliary branch dropped), from ours or an official file.

    Detection and segmentation models alike. `format="official"` writes the official `*-converted.pt` layout
    (fp16) instead of ours; the stripped config's labels (`yaml_file`, `stripped_from`) then live only in ours.
    """
    if format not in OUTPUT_FORMATS:
        raise CheckpointError(f"unknown output format {format!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
    model, dtype = load_model_and_dtype(source)
    model.yaml.setdefault("yaml_file", Path(source).name)  # official files keep the name outside their config
    stripped = strip_auxiliary(model.eval())
    if format == "official":
        return save_official(stripped, target)
    return save_checkpoint(target, stripped, half=dtype == torch.float16)
