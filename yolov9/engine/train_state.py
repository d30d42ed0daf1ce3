"""Run-level state helpers: device choice, seeding, the global RNG state (for exact resume), checkpoint finding."""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from yolov9.errors import ConfigError, YOLOv9Error
from yolov9.io.atomic import atomic_write


def select_device(device: Optional[str]) -> torch.device:
    """None -> first CUDA GPU if present else CPU; 'cpu', '0', 'cuda', 'cuda:1' as given."""
    if device is None or device == "":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    text = str(device).strip().lower()
    if text.isdigit():
        text = f"cuda:{text}"
    try:
        chosen = torch.device(text)
    except RuntimeError:
        raise ConfigError(f"device {device!r} is not valid; use cpu, 0, cuda or cuda:N") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available; use device='cpu'")
    return chosen


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and torch; deterministic mode also asks torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


class GlobalRNG:
    """Every random generator the training loop draws from (Python, NumPy, torch CPU and CUDA), checkpointable."""

    @staticmethod
    def state_dict() -> dict:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        state = {"python": random.getstate(), "numpy": [kind, torch.from_numpy(keys.copy()), pos, has_gauss, gauss],
                 "torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    @staticmethod
    def load_state_dict(state: dict) -> None:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
        kind, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


def find_last_checkpoint(project: Union[str, Path]) -> Path:
    """The most recently written `<project>/*/weights/last.pt` (for `resume=True`)."""
    candidates = sorted(Path(project).glob("*/weights/last.pt"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise YOLOv9Error(f"nothing to resume: no {project}/*/weights/last.pt; pass resume=<path to last.pt>")
    return candidates[-1]


def copy_file_atomic(source: Path, target: Path) -> None:
    with open(source, "rb") as f:
        atomic_write(target, lambda out: shutil.copyfileobj(f, out))
