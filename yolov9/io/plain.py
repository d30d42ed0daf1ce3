"""Plain data: the one converter from config-like values to what YAML and `torch.load(weights_only=True)` accept."""
from __future__ import annotations

from pathlib import PurePath
from typing import Any, Mapping

import numpy as np
import torch

from yolov9.errors import CheckpointError

SMALL_TENSOR = 64  # without keep_tensors, tensors up to this many values become lists


def plain_data(value: Any, where: str, keep_tensors: bool = False) -> Any:
    """A deep copy of `value` as plain Python data: paths -> str, numpy -> Python numbers / lists.

    `keep_tensors` keeps tensors, dtypes and tuples (checkpoint contents); otherwise tuples become lists and small
    tensors lists (values read out of an official pickle). Anything else is a CheckpointError naming `where`.
    """
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (str, PurePath)):
        return str(value)  # also plain-str versions of str subclasses such as torch.__version__
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if keep_tensors and isinstance(value, (torch.Tensor, torch.dtype)):
        return value
    if isinstance(value, torch.Tensor) and value.numel() <= SMALL_TENSOR:
        return value.tolist()
    if isinstance(value, (list, tuple)):
        items = [plain_data(v, f"{where}[{i}]", keep_tensors) for i, v in enumerate(value)]
        return tuple(items) if keep_tensors and isinstance(value, tuple) else items
    if isinstance(value, Mapping):
        return {k: plain_data(v, f"{where}.{k}", keep_tensors) for k, v in value.items()}
    raise CheckpointError(f"{where}: {type(value).__name__} is not plain data (use str, numbers, lists, dicts"
                          f"{' or tensors' if keep_tensors else ''})")
