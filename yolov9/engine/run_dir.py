"""Run folders (`runs/train/exp`, `exp2`, ...: one numbering rule for every command) and their YAML files."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Union

import yaml

from yolov9.io.atomic import atomic_write_bytes


def increment_path(path: Union[str, Path], exist_ok: bool = False) -> Path:
    """`runs/train/exp` if free (or exist_ok), else the first free of exp2, exp3, ..."""
    path = Path(path)
    if exist_ok or not path.exists():
        return path
    n = 2
    while (candidate := path.with_name(f"{path.name}{n}")).exists():
        n += 1
    return candidate


def write_yaml(path: Union[str, Path], data: Mapping[str, Any]) -> None:
    atomic_write_bytes(path, yaml.safe_dump(dict(data), sort_keys=False).encode())
