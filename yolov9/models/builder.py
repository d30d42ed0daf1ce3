"""Build the layer graph from a config in the official YAML schema, without evaluating any string.

A config has `nc`, `depth_multiple`, `width_multiple`, optional `activation` and the `backbone` and `head`
lists of rows `[from, repeats, module, args]`. Layers are numbered across backbone + head in one sequence.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from torch import nn

from yolov9.errors import ConfigError
from yolov9.nn.blocks import (ADown, AConv, CBFuse, CBLinear, Concat, Conv, ELAN1, RepConvN, RepNCSP, RepNCSPELAN4,
                              SPPELAN, Silence, default_activation)
from yolov9.nn.head import HEAD_SPECS, DetectHead, HeadSpec, make_divisible
from yolov9.nn.segment_head import SegmentHead

# Modules whose first arg is the output width (scaled by width_multiple) and whose input width is inserted.
WIDTH_MODULES = {"Conv": Conv, "AConv": AConv, "ADown": ADown, "ELAN1": ELAN1, "RepNCSPELAN4": RepNCSPELAN4,
                 "SPPELAN": SPPELAN, "RepNCSP": RepNCSP, "RepConvN": RepConvN}
OTHER_MODULES = {"Concat": Concat, "Silence": Silence, "CBLinear": CBLinear, "CBFuse": CBFuse,
                 "Upsample": nn.Upsample, "nn.Upsample": nn.Upsample}
KNOWN_MODULES = sorted([*WIDTH_MODULES, *OTHER_MODULES, *HEAD_SPECS])

ACTIVATIONS = {"SiLU": nn.SiLU, "ReLU": nn.ReLU, "LeakyReLU": nn.LeakyReLU, "Hardswish": nn.Hardswish,
               "Mish": nn.Mish, "GELU": nn.GELU, "ReLU6": nn.ReLU6}
_ACTIVATION_RE = re.compile(r"^(?:torch\.)?(?:nn\.)?(\w+)\((.*)\)$")

From = Union[int, list]


@dataclass
class Layer:
    """One built row: its module plus graph attributes (index, sources, type name, parameter count)."""

    index: int
    sources: From
    module: nn.Module
    type_name: str
    args: list
    out_channels: int


def parse_activation(text: Optional[str]) -> Callable[[], nn.Module]:
    """`activation: nn.ReLU()` (official syntax) -> factory; only known activations and literal args."""
    if text is None:
        return lambda: nn.SiLU(inplace=True)
    match = _ACTIVATION_RE.match(str(text).strip())
    if not match or match.group(1) not in ACTIVATIONS:
        raise ConfigError(f"activation {text!r} is not supported; use one of "
                          + ", ".join(f"nn.{a}()" for a in ACTIVATIONS))
    cls, arg_text = ACTIVATIONS[match.group(1)], match.group(2).strip()
    try:
        args = ast.literal_eval(f"({arg_text},)") if arg_text else ()
    except (ValueError, SyntaxError):
        raise ConfigError(f"activation {text!r}: arguments must be plain numbers") from None
    if cls in (nn.SiLU, nn.ReLU, nn.Hardswish, nn.Mish, nn.ReLU6) and not args:
        return lambda: cls(inplace=True)
    return lambda: cls(*args)


def _resolve_arg(value: Any, nc: int) -> Any:
    """Official configs write `nc` and `None` as bare words; every other string stays a string."""
    if value == "nc":
        return nc
    if value == "None":
        return None
    return value


def source_list(source: From) -> list:
    """A row's `from` as a list (one entry or several)."""
    return source if isinstance(source, list) else [source]


def absolute_source(source: int, index: int, row_name: str = "") -> int:
    """A `from` entry of row `index` -> absolute layer index (-1 = previous layer; -1 at layer 0 = the input)."""
    if not isinstance(source, int) or isinstance(source, bool):
        raise ConfigError(f"{row_name}: `from` entries must be integers, got {source!r}")
    absolute = index + source if source < 0 else source
    if absolute >= index or (absolute < 0 and not (index == 0 and source == -1)):
        raise ConfigError(f"{row_name}: `from` {source} does not name an earlier layer")
    return absolute


def config_rows(cfg: dict) -> list[list]:
    """backbone + head rows, checked for shape."""
    for key in ("backbone", "head"):
        if key not in cfg:
            raise ConfigError(f"model config is missing the `{key}` list")
        if not isinstance(cfg[key], list):
            raise ConfigError(f"model config `{key}` must be a list of rows [from, repeats, module, args]")
    rows = list(cfg["backbone"]) + list(cfg["head"])
    for i, row in enumerate(rows):
        if not (isinstance(row, (list, tuple)) and len(row) == 4):
            raise ConfigError(f"layer {i}: a row must be [from, repeats, module, args], got {row!r}")
        if not isinstance(row[3], list):
            raise ConfigError(f"layer {i} ({row[2]}): args must be a list, got {row[3]!r}")
    return rows


def build_layers(cfg: dict, in_channels: int = 3) -> list[Layer]:
    """Build every row of `cfg` into a `Layer`. The last row must be the (detection or segmentation) head."""
    if "nc" not in cfg:
        raise ConfigError("model config is missing `nc` (number of classes)")
    nc = int(cfg["nc"])
    if nc < 1:
        raise ConfigError(f"model config `nc` must be >= 1, got {nc}")
    depth, width = float(cfg.get("depth_multiple", 1.0)), float(cfg.get("width_multiple", 1.0))
    rows = config_rows(cfg)
    layers: list[Layer] = []
    channels: list[int] = []  # output channels by layer index
    with default_activation(parse_activation(cfg.get("activation"))):
        for i, (source, repeats, name, args) in enumerate(rows):
            row_name = f"layer {i} ({name})"
            if name not in KNOWN_MODULES:
                raise ConfigError(f"{row_name}: unknown module {name!r}; known modules: {', '.join(KNOWN_MODULES)}")
            sources = [absolute_source(s, i, row_name) for s in source_list(source)]
            in_ch = [in_channels if s < 0 else channels[s] for s in sources]
            args = [_resolve_arg(a, nc) for a in args]
            if not isinstance(repeats, int) or repeats < 1:
                raise ConfigError(f"{row_name}: repeats must be a positive integer, got {repeats!r}")
            repeats = max(round(repeats * depth), 1) if repeats > 1 else repeats
            try:
                module, out_ch, args = _make_module(name, args, in_ch, width, i == len(rows) - 1)
                if repeats > 1:
                    module = nn.Sequential(*[module] + [_make_module(name, args, in_ch, width, False)[0]
                                                        for _ in range(repeats - 1)])
            except (TypeError, ValueError, IndexError, AssertionError) as e:
                raise ConfigError(f"{row_name}: cannot build with args {args!r} ({e})") from None
            if name in HEAD_SPECS and i != len(rows) - 1:
                raise ConfigError(f"{row_name}: the head must be the last row")
            if len(sources) > 1 and name not in ("Concat", "CBFuse") and name not in HEAD_SPECS:
                raise ConfigError(f"{row_name}: takes one input, but `from` names {len(sources)}")
            layers.append(Layer(i, source, module, name, args, out_ch))
            channels.append(out_ch)
    if not layers or layers[-1].type_name not in HEAD_SPECS:
        raise ConfigError(f"the last row must be a detection head or a segmentation head ({', '.join(HEAD_SPECS)})")
    return layers


def _make_module(name: str, args: list, in_ch: list[int], width: float, is_last: bool
                 ) -> tuple[nn.Module, int, list]:
    """One module from its name and config args; returns (module, output channels, full ctor args)."""
    if name in WIDTH_MODULES:
        out = make_divisible(args[0] * width, 8)
        full = [in_ch[0], out, *args[1:]]
        return WIDTH_MODULES[name](*full), out, full
    if name in HEAD_SPECS:
        return _make_head(HEAD_SPECS[name], args, in_ch, width)
    if name == "Concat":
        return Concat(*args), sum(in_ch), args
    if name == "CBLinear":
        full = [in_ch[0], *args]
        return CBLinear(*full), list(args[0]), full
    if name == "CBFuse":
        return CBFuse(*args), in_ch[-1], args
    if name in ("Upsample", "nn.Upsample"):
        return nn.Upsample(*args), in_ch[0], args
    return OTHER_MODULES[name](*args), in_ch[0], args


def _make_head(spec: HeadSpec, args: list, in_ch: list[int], width: float) -> tuple[nn.Module, int, list]:
    """A head row: detection args `[nc]`, segmentation args `[nc, nm=32, npr=256]` (npr scaled by width)."""
    nc = args[0]
    if spec.masks is None:
        return DetectHead(nc, in_ch, spec.branches, spec.grouped), 0, [nc, in_ch]
    nm = args[1] if len(args) > 1 else 32
    npr = args[2] if len(args) > 2 else 256
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (nm, npr)):
        raise ValueError(f"mask count nm and prototype width npr must be positive integers, got {nm!r}, {npr!r}")
    npr = make_divisible(npr * width, 8)
    head = SegmentHead(nc, in_ch, spec.branches, spec.grouped, spec.masks, nm, npr)
    return head, 0, [nc, nm, npr, in_ch]
