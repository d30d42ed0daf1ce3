"""Import official YOLOv9 checkpoints (`yolov9-c.pt`, `gelan-c.pt`, `*-converted.pt`, `last.pt`) safely.

The file is read with the restricted unpickler (nothing from it runs); from the inert module tree we take the
state_dict, the embedded `yaml` config, `names`, `nc`, `stride` and `hyp`. OUR model is then built from that
config, so custom architectures and class counts load without any official code.
"""
from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from yolov9.errors import CheckpointError
from yolov9.io.plain import plain_data
from yolov9.io.unpickler import InertModule, UnsafeCheckpointError, restricted_pickle



@dataclass
class OfficialCheckpoint:
    """What an official checkpoint holds, as plain data. `state_dict` keeps the file's dtype (usually fp16)."""

    path: Path
    config: dict
    names: list[str]
    state_dict: dict[str, torch.Tensor]
    stride: Optional[list[float]]
    hyp: Optional[dict]
    source: str  # 'ema' or 'model': the module taken, as the official attempt_load does
    meta: dict = field(default_factory=dict)  # epoch, best_fitness, opt, date, has_optimizer


def require_torch_archive(path: Path) -> None:
    """Refuse, naming the file, what is missing or not a (zip) PyTorch archive, before any unpickling."""
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (not a zip archive; truncated or another format)")


def unpickle_restricted(path: Path) -> Any:
    """The file's top-level object, read through the restricted unpickler. Errors name the file."""
    require_torch_archive(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=restricted_pickle)
    except UnsafeCheckpointError as e:
        raise UnsafeCheckpointError(f"{path}: refused, nothing from it was run: {e}") from None
    except CheckpointError:
        raise
    except Exception as e:  # malformed archive or pickle: any failure inside torch/pickle means "unreadable"
        raise CheckpointError(f"{path}: cannot read the checkpoint ({type(e).__name__}: {e})") from None


def module_state_dict(root: InertModule) -> dict[str, torch.Tensor]:
    """The `state_dict()` an nn.Module with this pickled state would return (parameters + persistent buffers)."""
    state: dict[str, torch.Tensor] = {}
    stack = [("", root)]
    while stack:
        prefix, module = stack.pop()
        attrs = vars(module)
        skipped = attrs.get("_non_persistent_buffers_set") or set()
        for kind in ("_parameters", "_buffers", "_modules"):
            if not isinstance(attrs.get(kind) or {}, dict):
                raise CheckpointError(f"{prefix or 'model'}: `{kind}` is a {type(attrs[kind]).__name__}, not a dict")
        for kind in ("_parameters", "_buffers"):
            for name, tensor in (attrs.get(kind) or {}).items():
                if tensor is None or (kind == "_buffers" and name in skipped):
                    continue
                if not isinstance(tensor, torch.Tensor):
                    raise CheckpointError(f"{prefix}{name}: expected a tensor, found {type(tensor).__name__}")
                state[prefix + name] = tensor.detach()
        children = [(f"{prefix}{name}.", child) for name, child in (attrs.get("_modules") or {}).items()
                    if child is not None]
        for name, child in children:
            if not isinstance(child, InertModule):
                raise CheckpointError(f"{name[:-1]}: expected a module, found {type(child).__name__}")
        stack.extend(reversed(children))
    return state


def _names(raw: Any, nc: int, path: Path) -> list[str]:
    if raw is None:
        return [str(i) for i in range(nc)]
    if isinstance(raw, dict):
        try:
            raw = [raw[k] for k in sorted(raw, key=int)]
        except (TypeError, ValueError):
            raise CheckpointError(f"{path}: `names` dict must have integer keys") from None
    if not isinstance(raw, (list, tuple)) or len(raw) != nc:
        count = len(raw) if isinstance(raw, (list, tuple)) else type(raw).__name__
        raise CheckpointError(f"{path}: `names` has {count} entries but the model has nc={nc}")
    return [str(n) for n in raw]


def read_official(path: str | Path) -> OfficialCheckpoint:
    """Read an official checkpoint (stripped, unstripped or converted) without running anything from it."""
    path = Path(path)
    top = unpickle_restricted(path)
    if not isinstance(top, dict) or not ({"model", "ema"} & set(top)):
        found = f"a dict with keys {sorted(map(str, top))[:8]}" if isinstance(top, dict) else type(top).__name__
        raise CheckpointError(f"{path}: unknown checkpoint format: neither a yolov9 checkpoint nor an official YOLOv9 "
                              f"file (no `model` or `ema` entry; found {found})")
    source = "ema" if isinstance(top.get("ema"), InertModule) else "model"
    module = top.get(source)
    if not isinstance(module, InertModule):
        raise CheckpointError(f"{path}: `{source}` is a {type(module).__name__}, not a pickled model")
    attrs = vars(module)
    if not isinstance(attrs.get("yaml"), dict):
        raise CheckpointError(f"{path}: the model has no embedded `yaml` config; cannot rebuild it")
    config = plain_data(attrs["yaml"], f"{path}: yaml")
    nc = attrs.get("nc", config.get("nc"))
    if type(nc) is not int or nc < 1:
        raise CheckpointError(f"{path}: the model's class count `nc` is {nc!r}, not a positive integer")
    config["nc"] = nc
    stride = attrs.get("stride")
    meta = {key: plain_data(top.get(key), f"{path}: {key}") for key in ("epoch", "date", "opt") if key in top}
    best = plain_data(top.get("best_fitness"), f"{path}: best_fitness")
    meta["best_fitness"] = float(best[0] if isinstance(best, list) else best) if best is not None else None
    meta["has_optimizer"] = top.get("optimizer") is not None
    try:
        state_dict = module_state_dict(module)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: malformed model: {e}") from None
    return OfficialCheckpoint(
        path=path,
        config=config,
        names=_names(attrs.get("names"), nc, path),
        state_dict=state_dict,
        stride=[float(s) for s in stride.tolist()] if isinstance(stride, torch.Tensor) else None,
        hyp=plain_data(attrs.get("hyp"), f"{path}: hyp") if isinstance(attrs.get("hyp"), dict) else None,
        source=source,
        meta=meta,
    )


def check_stride(expected: Optional[list[float]], actual: torch.Tensor, path: Path) -> None:
    """The rebuilt model must have the strides the file records."""
    if expected is not None and (len(expected) != len(actual)
                                 or any(not math.isclose(a, b) for a, b in zip(expected, actual.tolist()))):
        raise CheckpointError(f"{path}: the file's strides {expected} differ from the rebuilt model's "
                              f"{actual.tolist()}")
