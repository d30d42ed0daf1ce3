"""Atomic file writes: a temp file in the target folder, fsync, then `os.replace`.

A crash, kill or exception during a save never leaves a half-written file at `path` and never destroys the
previous file there: readers see either the old file or the complete new one.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Union

import torch

PathLike = Union[str, Path]


def atomic_write(path: PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call `write(file)` on a temp file next to `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_torch_save(obj: Any, path: PathLike, **save_options: Any) -> Path:
    """`torch.save(obj, path)`, atomically."""
    return atomic_write(path, lambda f: torch.save(obj, f, **save_options))
