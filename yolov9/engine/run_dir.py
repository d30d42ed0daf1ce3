"""The run folder `runs/train/<name>`: auto-increment, args.yaml / hyp.yaml, results.csv (all written atomically)."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

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


def make_run_dir(project: Union[str, Path], name: str, exist_ok: bool = False) -> Path:
    """Create (auto-incremented) `project/name` and its `weights/` folder; returns the run folder."""
    run = increment_path(Path(project) / name, exist_ok)
    (run / "weights").mkdir(parents=True, exist_ok=True)
    return run


def write_yaml(path: Union[str, Path], data: Mapping[str, Any]) -> None:
    atomic_write_bytes(path, yaml.safe_dump(dict(data), sort_keys=False).encode())


class ResultsTable:
    """results.csv: one row per finished epoch, the whole file rewritten atomically after each row.

    On resume `rows` are reloaded and cut to the epochs the checkpoint has finished.
    """

    def __init__(self, path: Union[str, Path], columns: Sequence[str]):
        self.path, self.columns = Path(path), list(columns)
        self.rows: list[dict] = []

    def load(self, finished_epochs: int) -> None:
        if self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as f:
                rows = [{k.strip(): float(v) for k, v in row.items()} for row in csv.DictReader(f)]
            self.rows = [r for r in rows if r["epoch"] < finished_epochs]

    def append(self, row: Mapping[str, float]) -> None:
        self.rows.append({c: float(row[c]) for c in self.columns})
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        for r in self.rows:
            writer.writerow({c: f"{r[c]:.6g}" for c in self.columns})
        atomic_write_bytes(self.path, buffer.getvalue().encode())
