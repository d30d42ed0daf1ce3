"""Our checkpoint format and the one loader for ours and official files.

A checkpoint is a dict that `torch.load(path, weights_only=True)` reads (tensors and plain Python data only):

    format="yolov9", version=1, config (model YAML dict), names (list), nc, stride, hyp,
    model (state_dict), ema (state_dict or None), ema_updates, optimizer (state_dict or None), epoch,
    best_fitness, train_args (dict), trainer (the trainer's resume state, or None), library_version,
    torch_version, date

Files are written atomically (`yolov9.io.atomic`).
"""
from __future__ import annotations

import datetime
import pickle
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import torch
from torch import nn

from yolov9.errors import CheckpointError, ConfigError
from yolov9.io.atomic import atomic_torch_save
from yolov9.io.official import check_stride, read_official, require_torch_archive
from yolov9.io.plain import plain_data
from yolov9.version import __version__
from yolov9.models import DetectionModel

FORMAT = "yolov9"
VERSION = 1
PathLike = Union[str, Path]


def _state(module: nn.Module, half: bool) -> dict[str, torch.Tensor]:
    return {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
            for k, v in module.state_dict().items()}


def _ema_module(ema: Any) -> tuple[Optional[nn.Module], Optional[int]]:
    """An EMA given as a module, or as an object with `.ema` (module) and optional `.updates`."""
    if ema is None or isinstance(ema, nn.Module):
        return ema, None
    module = getattr(ema, "ema", None)
    if not isinstance(module, nn.Module):
        raise CheckpointError(f"ema must be a model or have an `.ema` model, got {type(ema).__name__}")
    updates = getattr(ema, "updates", None)
    return module, int(updates) if updates is not None else None


def checkpoint_dict(model: DetectionModel, *, ema: Any = None, optimizer: Any = None, epoch: Optional[int] = None,
                    best_fitness: Optional[float] = None, train_args: Optional[Mapping] = None,
                    trainer: Optional[Mapping] = None, half: bool = False) -> dict:
    """The dict `save_checkpoint` writes. `optimizer` may be an optimizer or its state_dict."""
    ema_module, ema_updates = _ema_module(ema)
    optimizer_state = optimizer.state_dict() if hasattr(optimizer, "state_dict") else optimizer
    return {
        "format": FORMAT,
        "version": VERSION,
        "config": plain_data(model.yaml, "config", True),
        "names": [str(n) for n in model.names],
        "nc": int(model.nc),
        "stride": [float(s) for s in model.stride.tolist()],
        "hyp": plain_data(model.hyp, "hyp", True),
        "imgsz": (train_args or {}).get("imgsz", model.imgsz),
        "model": _state(model, half),
        "ema": _state(ema_module, half) if ema_module is not None else None,
        "ema_updates": ema_updates,
        "optimizer": plain_data(optimizer_state, "optimizer", True),
        "epoch": epoch,
        "best_fitness": None if best_fitness is None else float(best_fitness),
        "train_args": plain_data(dict(train_args or {}), "train_args", True),
        "trainer": plain_data(dict(trainer), "trainer", True) if trainer is not None else None,
        "library_version": __version__,
        "torch_version": str(torch.__version__),
        "date": datetime.datetime.now().isoformat(),
    }


def save_checkpoint(path: PathLike, model: DetectionModel, *, ema: Any = None, optimizer: Any = None,
                    epoch: Optional[int] = None, best_fitness: Optional[float] = None,
                    train_args: Optional[Mapping] = None, trainer: Optional[Mapping] = None,
                    half: bool = False) -> Path:
    """Write a checkpoint atomically. `half=True` stores floating tensors as fp16 (final / release files).

    `trainer` is the trainer's state for an exact resume (scheduler, scaler, EMA counters, RNG, history, ...) as
    plain data or tensors.
    """
    ckpt = checkpoint_dict(model, ema=ema, optimizer=optimizer, epoch=epoch, best_fitness=best_fitness,
                           train_args=train_args, trainer=trainer, half=half)
    return atomic_torch_save(ckpt, path)


def strip_optimizer_state(path: PathLike, out: Optional[PathLike] = None) -> Path:
    """Turn a training checkpoint into a release file: the EMA weights (or model) in fp16, no optimizer state."""
    ckpt = read_checkpoint(path)
    weights = ckpt["ema"] if ckpt.get("ema") is not None else ckpt["model"]
    ckpt.update(model={k: v.half() if v.is_floating_point() else v for k, v in weights.items()},
                ema=None, ema_updates=None, optimizer=None, trainer=None)
    return atomic_torch_save(ckpt, out or path)


class _NotOurFormat(Exception):
    """The file is a readable torch archive but not in our format (probably an official checkpoint)."""


def _read_ours(path: Path) -> dict:
    require_torch_archive(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise _NotOurFormat(str(e)) from None
    except Exception as e:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise _NotOurFormat("no format marker")
    if not isinstance(ckpt.get("version"), int) or ckpt["version"] > VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {ckpt.get('version')!r} is newer than this "
                              f"library reads ({VERSION}); upgrade yolov9")
    return ckpt


def read_checkpoint(path: PathLike) -> dict:
    """Read a checkpoint in our format (weights_only: no code can run). Errors name the file and the problem."""
    path = Path(path)
    try:
        return _read_ours(path)
    except _NotOurFormat:
        raise CheckpointError(f"{path}: not a yolov9-format checkpoint; official YOLOv9 files load with "
                              "yolov9.load() or convert with `yolov9 convert`") from None


def model_from_weights(config: Mapping, names: list[str], state: Mapping[str, torch.Tensor], path: Path,
                       hyp: Optional[dict] = None, stride: Optional[list[float]] = None) -> DetectionModel:
    """Build OUR model from `config` and load `state` with strict key and shape matching (fp32 model)."""
    try:
        model = DetectionModel(config)
    except ConfigError as e:
        raise CheckpointError(f"{path}: the embedded model config cannot be built: {e}") from None
    check_stride(stride, model.stride, path)
    load_strict(model, state, path)
    model.names, model.hyp = list(names), hyp
    return model


def load_strict(model: nn.Module, state: Mapping[str, torch.Tensor], path: Path) -> None:
    """`load_state_dict(strict=True)` with every missing / unexpected / mis-shaped key listed in the error."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {tuple(state[k].shape)} vs model {tuple(v.shape)}" for k, v in own.items()
                  if k in state and state[k].shape != v.shape]
    if missing or unexpected or mismatched:
        parts = [f"{label} ({len(keys)}): {', '.join(keys[:10])}{' ...' if len(keys) > 10 else ''}"
                 for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                     ("shape mismatches", mismatched)) if keys]
        raise CheckpointError(f"{path}: weights do not fit the model: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)


def read_weights(path: PathLike) -> tuple[dict, dict[str, torch.Tensor]]:
    """(model description, state_dict in the file's dtype) from our or an official checkpoint, building nothing.

    The description has `config`, `names`, `hyp`, `stride` and `imgsz` (the training image size, or None).
    EMA weights are preferred when present.
    """
    path = Path(path)
    try:
        ckpt = _read_ours(path)
    except _NotOurFormat:
        official = read_official(path)
        description = {"config": official.config, "names": official.names, "hyp": official.hyp,
                       "stride": official.stride, "imgsz": (official.meta.get("opt") or {}).get("imgsz")}
        return description, official.state_dict
    weights = ckpt["ema"] if ckpt.get("ema") is not None else ckpt["model"]
    description = {key: ckpt.get(key) for key in ("config", "names", "hyp", "stride")}
    description["imgsz"] = ckpt.get("imgsz", (ckpt.get("train_args") or {}).get("imgsz"))
    return description, weights


def load_model_and_dtype(path: PathLike) -> tuple[DetectionModel, torch.dtype]:
    """(model in train mode, fp32) from our or an official checkpoint, plus the file's weight dtype."""
    description, weights = read_weights(path)
    model = model_from_weights(description["config"], description["names"], weights, Path(path),
                               hyp=description["hyp"], stride=description["stride"])
    imgsz = description["imgsz"]
    model.imgsz = int(imgsz) if isinstance(imgsz, int) and not isinstance(imgsz, bool) and imgsz > 0 else None
    return model, _float_dtype(weights)


def _float_dtype(state: Mapping[str, torch.Tensor]) -> torch.dtype:
    return next((v.dtype for v in state.values() if v.is_floating_point()), torch.float32)


def load(path: PathLike, fuse: bool = False) -> DetectionModel:
    """A ready model (eval mode, fp32, CPU) from our checkpoint or any official YOLOv9 checkpoint.

    Uses the EMA weights when the file has them (as the official loader does). `fuse=True` folds BatchNorm
    and merges RepConvN branches.
    """
    model = load_model_and_dtype(path)[0].eval()
    return model.fuse() if fuse else model
