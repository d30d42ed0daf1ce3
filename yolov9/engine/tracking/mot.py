"""MOT-challenge result files: one text file per sequence, one line per tracked box,
`frame,id,x,y,w,h,conf,-1,-1,-1` (frames from 1, box top-left corner and size in pixels)."""
from __future__ import annotations

import io
from pathlib import Path
from typing import IO

import numpy as np

from yolov9.ops.boxes import xyxy2ltwh

MOT_FORMAT = "%d,%d,%.2f,%.2f,%.2f,%.2f,%.4f,-1,-1,-1"


def mot_lines(frame: int, tracked: np.ndarray) -> str:
    """Tracked boxes (m, 7) [x1, y1, x2, y2, conf, cls, id] of frame number `frame` (1-based) -> MOT lines."""
    rows = np.column_stack((np.full(len(tracked), frame), tracked[:, 6],
                            xyxy2ltwh(np.asarray(tracked[:, :4], np.float64)), tracked[:, 4]))
    text = io.StringIO()
    np.savetxt(text, rows, fmt=MOT_FORMAT)
    return text.getvalue()


class MotWriter:
    """Appends the lines of each sequence to `<folder>/<name>.txt` as frames arrive (flushed every frame, so a
    run stopped early leaves complete lines)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.files: dict[str, IO[str]] = {}

    def write(self, name: str, frame: int, tracked: np.ndarray) -> None:
        if name not in self.files:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.files[name] = open(self.folder / f"{name}.txt", "w")
        self.files[name].write(mot_lines(frame, tracked))
        self.files[name].flush()

    def close(self) -> None:
        for file in self.files.values():
            file.close()
        self.files.clear()
