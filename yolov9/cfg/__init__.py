"""Bundled configs: model architectures (`models/*.yaml`) and training recipes (`hyp/*.yaml`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Union

import yaml

from yolov9.errors import ConfigError

CFG_DIR = Path(__file__).resolve().parent
MODELS_DIR = CFG_DIR / "models"
HYP_DIR = CFG_DIR / "hyp"
DEFAULT_HYP = "scratch-high"
# Keys of the official hyp files that the official code never reads; accepted and ignored.
UNUSED_OFFICIAL_HYP_KEYS = frozenset({"obj", "obj_pw", "iou_t", "anchor_t"})

PathOrDict = Union[str, Path, Mapping[str, Any]]


def bundled_models() -> list[str]:
    """Names of the bundled model configs, e.g. ['gelan-c', ..., 'yolov9-t']."""
    return sorted(p.stem for p in MODELS_DIR.glob("*.yaml"))


def read_yaml(path: Union[str, Path]) -> dict:
    """Read a YAML mapping with the safe loader; errors name the file."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a YAML mapping at the top level, got {type(data).__name__}")
    return data


def _resolve(cfg: Union[str, Path], folder: Path, kind: str) -> Path:
    """A bundled name ('gelan-c', 'gelan-c.yaml') or a path to a file."""
    path = Path(cfg)
    if path.is_file():
        return path
    bundled = folder / (path.stem + ".yaml")
    if path.suffix in ("", ".yaml", ".yml") and len(path.parts) == 1 and bundled.is_file():
        return bundled
    names = ", ".join(p.stem for p in sorted(folder.glob("*.yaml")))
    raise ConfigError(f"{cfg}: no such {kind} config file, and not a bundled one ({names})")


def load_model_config(cfg: PathOrDict) -> dict:
    """A model config dict from a bundled name, a YAML path, or a dict (copied)."""
    if isinstance(cfg, Mapping):
        return yaml.safe_load(yaml.safe_dump(dict(cfg)))  # deep copy of plain data
    path = _resolve(cfg, MODELS_DIR, "model")
    data = read_yaml(path)
    data.setdefault("yaml_file", path.name)
    return data


def load_hyp(hyp: PathOrDict | None = None, **overrides: Any) -> dict:
    """Hyperparameters: the bundled recipe's values, updated by a file/dict and keyword overrides.

    Unknown keys are refused so that a typo never silently does nothing.
    """
    defaults = read_yaml(HYP_DIR / f"{DEFAULT_HYP}.yaml")
    if hyp is None:
        user: Mapping[str, Any] = {}
    elif isinstance(hyp, Mapping):
        user = hyp
    else:
        user = read_yaml(_resolve(hyp, HYP_DIR, "hyperparameter"))
    merged = dict(defaults)
    for source in (user, overrides):
        for key, value in source.items():
            if key in UNUSED_OFFICIAL_HYP_KEYS:
                continue
            if key not in defaults:
                raise ConfigError(f"unknown hyperparameter {key!r}; known: {', '.join(sorted(defaults))}")
            merged[key] = value
    return merged
