"""Hyperparameters: one typed object, resolved once at the edge (CLI / TrainOptions) and passed down as values.

The values of the official recipe live in `hyp/scratch-high.yaml` (data, not code); this module is the only place
that reads a hyperparameter file. Unknown keys are refused so that a typo never silently does nothing; the keys of
official hyp files that the official code never reads are accepted and ignored.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from yolov9.cfg.files import HYP_DIR, read_yaml, resolve_config_file
from yolov9.errors import ConfigError

DEFAULT_HYP = "scratch-high"
UNUSED_OFFICIAL_HYP_KEYS = frozenset({"obj", "obj_pw", "iou_t", "anchor_t"})


@dataclass(frozen=True)
class Hyperparameters:
    """Optimizer, loss, assigner and augmentation settings (names and meanings of the official hyp files)."""

    lr0: float
    lrf: float
    momentum: float
    weight_decay: float
    warmup_epochs: float
    warmup_momentum: float
    warmup_bias_lr: float
    nbs: int
    box: float
    cls: float
    dfl: float
    seg: float
    cls_pw: float
    fl_gamma: float
    label_smoothing: float
    aux_weight: float
    tal_topk: int
    tal_alpha: float
    tal_beta: float
    hsv_h: float
    hsv_s: float
    hsv_v: float
    degrees: float
    translate: float
    scale: float
    shear: float
    perspective: float
    flipud: float
    fliplr: float
    mosaic: float
    mixup: float
    copy_paste: float

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **values: Any) -> "Hyperparameters":
        """A copy with some values changed (names checked, values converted to the field's type)."""
        return _build({**self.to_dict(), **_checked(values, "override")})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


HypLike = Union[None, str, Path, Mapping[str, Any], Hyperparameters]


def _checked(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    known = set(Hyperparameters.names())
    out = {}
    for key, value in values.items():
        if key in UNUSED_OFFICIAL_HYP_KEYS:
            continue
        if key not in known:
            raise ConfigError(f"{source}: unknown hyperparameter {key!r}; known: {', '.join(sorted(known))}")
        out[key] = value
    return out


def _build(values: Mapping[str, Any]) -> Hyperparameters:
    converted = {}
    for f in dataclasses.fields(Hyperparameters):
        value = values[f.name]
        kind = int if f.type in ("int", int) else float
        try:
            converted[f.name] = kind(value)
        except (TypeError, ValueError):
            raise ConfigError(f"hyperparameter {f.name}: expected a number, got {value!r}") from None
    return Hyperparameters(**converted)


_DEFAULTS: Optional[Hyperparameters] = None


def default_hyp() -> Hyperparameters:
    """The official recipe (`hyp/scratch-high.yaml`), read once."""
    global _DEFAULTS
    if _DEFAULTS is None:
        path = HYP_DIR / f"{DEFAULT_HYP}.yaml"
        values = _checked(read_yaml(path), str(path))
        missing = set(Hyperparameters.names()) - set(values)
        if missing:
            raise ConfigError(f"{path}: missing hyperparameters {sorted(missing)}")
        _DEFAULTS = _build(values)
    return _DEFAULTS


def as_hyperparameters(values: Union[None, Mapping[str, Any], Hyperparameters]) -> Hyperparameters:
    """Values, not a file: the official recipe with `values` (a mapping) replacing some of it; None = the recipe."""
    if isinstance(values, Hyperparameters):
        return values
    if values is None:
        return default_hyp()
    return default_hyp().replace(**_checked(values, "hyperparameters"))


def load_hyp(hyp: HypLike = None, **overrides: Any) -> Hyperparameters:
    """Hyperparameters: the official recipe, updated by a file (bundled name or path) or mapping, then overrides."""
    if isinstance(hyp, (str, Path)):
        path = resolve_config_file(hyp, HYP_DIR, "hyperparameter")
        base = default_hyp().replace(**_checked(read_yaml(path), str(path)))
    else:
        base = as_hyperparameters(hyp)
    return base.replace(**overrides) if overrides else base
