"""Atomic file writes: a temp file in the target folder, fsync, then `os.replace`.

A crash, kill or exception during a save never leaves a half-written file at `path` and never destroys the
previous file there: readers see either the old file or the complete new one.
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Optional, Union

import torch

from yolov9.errors import YOLOv9Error

PathLike = Union[str, Path]


def _new_file_mode(path: Path) -> int:
    """The permissions a plain `open(path, "w")` would give: the existing file's, else 0666 minus the umask."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


class _Tracked:
    """A binary file that counts what is written and remembers a failed write (a writer such as torch.save may
    wrap the OSError in its own exception)."""

    def __init__(self, file: BinaryIO):
        self.file, self.written, self.error = file, 0, None

    def write(self, data) -> int:
        try:
            count = self.file.write(data)
        except OSError as e:
            self.error = e
            raise
        self.written += count
        return count

    def __getattr__(self, name: str):
        return getattr(self.file, name)


def _full_disk(path: Path, error: Optional[OSError], written: int) -> Optional[YOLOv9Error]:
    if error is None or error.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    free = shutil.disk_usage(path.parent).free
    return YOLOv9Error(f"{path}: no space left on the device ({written / 2**20:.1f} MiB written before it failed, "
                       f"{free / 2**20:.1f} MiB free in {path.parent}); the previous {path.name}, if any, is intact")


def atomic_write(path: PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call `write(file)` on a temp file next to `path`, fsync it, then rename it over `path`.

    The file gets the permissions a normal write would give it (not mkstemp's 0600). A full disk is one
    YOLOv9Error naming the file and the space; the previous file at `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise (_full_disk(path, e, 0) or e) from None
    tracked = None
    try:
        os.chmod(temp_name, _new_file_mode(path))
        with os.fdopen(fd, "wb") as f:
            tracked = _Tracked(f)
            write(tracked)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp_name, path)
    except BaseException as e:
        Path(temp_name).unlink(missing_ok=True)
        full = _full_disk(path, tracked.error if tracked and tracked.error else e if isinstance(e, OSError) else None,
                          tracked.written if tracked else 0)
        if full is not None:
            raise full from None
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
