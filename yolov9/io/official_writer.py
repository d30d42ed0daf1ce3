"""Write a model in the official `*-converted.pt` layout, for tools that load files with the official code.

The official code unpickles whole modules, so the file must name the official classes
(`models.yolo.DetectionModel`, `models.yolo.DDetect`, `models.common.Conv`, ...) and torch.nn layers. We build
that pickle without the official code: each of our modules becomes a record whose class carries the official
module path and name and whose state is the module's attributes (the ones the official forward reads).
Segmentation models are written as `models.yolo.SegmentationModel`; their head records carry the reference
`detect = <detection head>.forward` that the official segmentation heads call.
"""
from __future__ import annotations

import copy
import copyreg
import dataclasses
import pickle
import types
from pathlib import Path
from typing import Any, Union

import torch
from torch import nn

from yolov9.errors import CheckpointError
from yolov9.io.atomic import atomic_write
from yolov9.models import DetectionModel
from yolov9.nn.head import HEAD_SPECS, DetectHead, head_name

# Attributes the official classes read in forward() that our modules may not carry.
OFFICIAL_DEFAULTS = {"RepConvN": {"bn": None}, **{head: {"inplace": True} for head in HEAD_SPECS}}
DROPPED_ATTRIBUTES = {"_anchor_cache", "branches", "grouped", "masks"}
OUR_CONFIG_KEYS = ("yaml_file", "stripped_from")  # official configs have no such keys (yaml_file is an attribute)


class _OfficialRecord:
    """A pickled stand-in for an official class: `official_global` is what the pickle names."""

    official_global = ""

    def __init__(self, state: dict):
        self.state = state

    def __reduce_ex__(self, protocol: int):
        return copyreg.__newobj__, (type(self),), self.state


def _record_class(official_global: str, cache: dict) -> type:
    if official_global not in cache:
        name = official_global.rpartition(".")[2]
        cache[official_global] = type(name, (_OfficialRecord,), {"official_global": official_global})
    return cache[official_global]


class _OfficialPickler(pickle._Pickler):  # the Python pickler: its save_global can be overridden
    """Writes record classes as GLOBAL '<official module> <Name>' without importing that module."""

    def save_global(self, obj: Any, name: Any = None) -> None:
        if isinstance(obj, type) and issubclass(obj, _OfficialRecord) and obj.official_global:
            module, _, qualname = obj.official_global.rpartition(".")
            self.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode("utf-8"))
            self.memoize(obj)
            return
        super().save_global(obj, name)


class _OfficialMethod:
    """Pickles as `getattr(<official class record>, name)`: how protocol 2 writes a reference to a method."""

    def __init__(self, owner: type, name: str):
        self.owner, self.name = owner, name

    def __reduce_ex__(self, protocol: int):
        return getattr, (self.owner, self.name)


_official_pickle = types.SimpleNamespace(Pickler=_OfficialPickler, __name__=__name__)


def _official_head_name(head: DetectHead) -> str:
    try:
        return head_name(head.spec)
    except ValueError:
        raise CheckpointError(f"the official code has no head class for {head.spec}; this model cannot be "
                              "written in the official layout (save it in the yolov9 format)") from None


def _official_name(module: nn.Module) -> str:
    if isinstance(module, DetectionModel):
        return f"models.yolo.{'SegmentationModel' if module.task == 'segment' else 'DetectionModel'}"
    if isinstance(module, DetectHead):
        return f"models.yolo.{_official_head_name(module)}"
    return f"models.common.{type(module).__name__}"


def _convert(module: nn.Module, cache: dict) -> Any:
    """Our module tree -> torch.nn objects (copied) and official records, children converted recursively."""
    children = {name: _convert(child, cache) if child is not None else None for name, child in module._modules.items()}
    if type(module).__module__.startswith("torch.nn"):
        out = copy.copy(module)
        out.__dict__["_modules"] = dict(children)
        return out
    official = _official_name(module)
    state = {k: v for k, v in vars(module).items() if k not in DROPPED_ATTRIBUTES}
    state.update(OFFICIAL_DEFAULTS.get(official.rpartition(".")[2], {}))
    state["_modules"] = dict(children)
    if isinstance(module, DetectHead) and module.task == "segment":
        detection = head_name(dataclasses.replace(module.spec, masks=None))
        state["detect"] = _OfficialMethod(_record_class(f"models.yolo.{detection}", cache), "forward")
    if isinstance(module, DetectionModel):
        state["yaml"] = {k: v for k, v in module.yaml.items() if k not in OUR_CONFIG_KEYS}
        sequential = nn.Sequential()
        sequential.__dict__["_modules"] = state["_modules"].pop("model")._modules
        state["_modules"]["model"] = sequential
        state.update(names=dict(enumerate(module.names)), yaml_file=module.yaml.get("yaml_file", ""), inplace=True)
    return _record_class(official, cache)(state)


def official_converted_dict(model: DetectionModel) -> dict:
    """The dict the official reparameterization notebook saves, holding `model` in fp16 and eval mode."""
    half = copy.deepcopy(model).half().eval()
    return {"model": _convert(half, {}), "optimizer": None, "best_fitness": None, "ema": None, "updates": None,
            "opt": None, "git": None, "date": None, "epoch": -1}


def save_official(model: DetectionModel, path: Union[str, Path]) -> Path:
    """Write `model` as an official-layout checkpoint (loadable by the official code), atomically."""
    obj = official_converted_dict(model)
    return atomic_write(path, lambda f: torch.save(obj, f, pickle_module=_official_pickle, pickle_protocol=2))
