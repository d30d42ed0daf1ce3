"""Bundled config files (`models/*.yaml`, `hyp/*.yaml`) and the safe YAML reader every config goes through."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Union

import yaml

from yolov9.errors import ConfigError

CFG_DIR = Path(__file__).resolve().parent
MODELS_DIR = CFG_DIR / "models"
HYP_DIR = CFG_DIR / "hyp"

PathOrDict = Union[str, Path, Mapping[str, Any]]


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


def resolve_config_file(cfg: Union[str, Path], folder: Path, kind: str) -> Path:
    """A bundled name ('gelan-c', 'gelan-c.yaml') or a path to a file."""
    path = Path(cfg)
    if path.is_file():
        return path
    bundled = folder / (path.stem + ".yaml")
    if path.suffix in ("", ".yaml", ".yml") and len(path.parts) == 1 and bundled.is_file():
        return bundled
    names = ", ".join(p.stem for p in sorted(folder.glob("*.yaml")))
    raise ConfigError(f"{cfg}: no such {kind} config file, and not a bundled one ({names})")


def is_model_config(source: Union[str, Path]) -> bool:
    """Whether `source` names a model config: a YAML file or a bundled name."""
    path = Path(str(source))
    if path.suffix in (".yaml", ".yml"):
        return True
    return path.suffix == "" and len(path.parts) == 1 and (MODELS_DIR / f"{path.name}.yaml").is_file()


def load_model_config(cfg: PathOrDict) -> dict:
    """A model config dict from a bundled name, a YAML path, or a dict (copied)."""
    if isinstance(cfg, Mapping):
        return yaml.safe_load(yaml.safe_dump(dict(cfg)))  # deep copy of plain data
    path = resolve_config_file(cfg, MODELS_DIR, "model")
    data = read_yaml(path)
    data.setdefault("yaml_file", path.name)
    return data
