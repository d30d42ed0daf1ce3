"""Check every image and label of a split once, cache the result next to the labels, report problems.

The result is held in flat numpy arrays (one buffer each), so DataLoader workers that fork the dataset
do not grow by copy-on-read of Python objects.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from yolov9.data.config import IMAGE_SUFFIXES, image_problem, label_path
from yolov9.io.atomic import atomic_write_bytes
from yolov9.data.formats import ERROR, FIXED, NOTE, Labels, Problem, parse_yolo_label, read_coco
from yolov9.data.polygons import Polygons
from yolov9.errors import DatasetError

CACHE_VERSION = "yolov9-scan-2"  # 2: several rings per label row
_MODE_NOTES = {"I;16": "16-bit image; converted to 8-bit", "I;16B": "16-bit image; converted to 8-bit",
               "I;16L": "16-bit image; converted to 8-bit", "I": "32-bit integer image; converted to 8-bit",
               "L": "grayscale image; converted to RGB", "LA": "grayscale image with alpha; converted to RGB",
               "RGBA": "RGBA image; alpha channel dropped", "CMYK": "CMYK image; converted to RGB",
               "P": "palette image; converted to RGB", "1": "1-bit image; converted to RGB"}


@dataclass
class ScanResult:
    """Kept images and their labels as flat arrays; labels of image i are labels[offsets[i]:offsets[i+1]], and
    `polygons` holds the M rows' normalised rings (row j: rings polygons.rows[j]:polygons.rows[j + 1], ring r:
    points polygons.rings[r]:polygons.rings[r + 1] of polygons.points (P, 2) float32)."""

    files: np.ndarray  # (N,) str
    shapes: np.ndarray  # (N, 2) int32 (h, w) after EXIF orientation
    labels: np.ndarray  # (M, 5) float32 [class, cx, cy, w, h] normalised
    offsets: np.ndarray  # (N + 1,) int64
    polygons: Polygons  # M objects
    problems: list = field(default_factory=list)
    found: int = 0
    from_cache: bool = False

    def __len__(self) -> int:
        return len(self.files)

    @property
    def skipped(self) -> int:
        return self.found - len(self.files)

    def image_labels(self, i: int) -> tuple[np.ndarray, Polygons]:
        """(n, 5) rows and the n objects' normalised rings of kept image i."""
        lo, hi = self.offsets[i], self.offsets[i + 1]
        return self.labels[lo:hi], self.polygons.slice(lo, hi)


def check_image(path: Path) -> tuple[Optional[tuple[int, int]], list]:
    """(h, w) after EXIF orientation, or None when the image is unusable; plus problems found."""
    file = str(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return None, [Problem(file, "", ERROR, f"unsupported image format {path.suffix!r}")]
    try:
        data = path.read_bytes()
    except OSError as e:
        return None, [Problem(file, "", ERROR, f"cannot read file ({e.strerror or e})")]
    problem = image_problem(path)
    if "MAX_IMAGE_PIXELS" in problem:  # refused before anything decodes it
        return None, [Problem(file, "", ERROR, problem)]
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            mode, orientation = im.mode, im.getexif().get(0x0112, 1)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        reason = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-f]+>", "", str(e)) or type(e).__name__
        return None, [Problem(file, "", ERROR, f"unreadable or corrupt image ({reason})")]
    if path.suffix.lower() in (".jpg", ".jpeg") and not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        return None, [Problem(file, "", ERROR, "truncated JPEG (no end-of-image marker)")]
    problems = []
    if mode in _MODE_NOTES:
        problems.append(Problem(file, "", NOTE, _MODE_NOTES[mode]))
    if orientation in range(2, 9):
        problems.append(Problem(file, "", NOTE, f"EXIF orientation {orientation} applied"))
        if orientation >= 5:
            w, h = h, w
    if min(w, h) < 2:
        return None, problems + [Problem(file, "", ERROR, f"image too small ({w}x{h})")]
    return (h, w), problems


def _check_yolo(image: Path, nc: int) -> tuple[Optional[tuple[int, int]], Labels, list]:
    shape, problems = check_image(image)
    labels_file = label_path(image)
    try:
        text = labels_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
        problems.append(Problem(str(labels_file), "", NOTE, "no label file; used as a background image"))
    except (OSError, UnicodeDecodeError) as e:
        text = ""
        problems.append(Problem(str(labels_file), "", ERROR, f"cannot read label file ({e})"))
        shape = None
    labels = parse_yolo_label(text, nc, str(labels_file))
    return shape, labels, problems


def _fingerprint(images: Sequence[Path], sources: Sequence[Path], nc: int) -> str:
    """Hash of the file list and every file's size and mtime (images, label files or COCO jsons)."""
    digest = hashlib.sha256(f"{CACHE_VERSION} nc={nc}\n".encode())
    for path in list(images) + list(sources):
        try:
            st = os.stat(path)
            digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()


def cache_path(images: Sequence[Path], coco: Sequence[Path]) -> Path:
    """`<json>.cache` for COCO, else `<labels folder>.cache` (like the official `labels/train2017.cache`)."""
    if coco:
        return Path(coco[0]).with_suffix(".cache")
    return label_path(images[0]).parent.with_suffix(".cache")


def _save_cache(path: Path, fingerprint: str, result: ScanResult) -> None:
    buffer = io.BytesIO()
    problems = np.array([tuple(p) for p in result.problems], dtype=str).reshape(-1, 4)
    np.savez(buffer, fingerprint=np.array(fingerprint), files=result.files, shapes=result.shapes,
             labels=result.labels, offsets=result.offsets, polygon_points=result.polygons.points,
             polygon_rings=result.polygons.rings, polygon_rows=result.polygons.rows, problems=problems,
             found=np.array(result.found))
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError:
        pass  # read-only dataset folder: scanning again next time is correct, only slower


def _load_cache(path: Path, fingerprint: str) -> Optional[ScanResult]:
    """The cached scan, or None when absent, stale or unreadable (never trusted blindly)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["fingerprint"]) != fingerprint:
                return None
            arrays = {k: z[k] for k in ("files", "shapes", "labels", "offsets")}
            polygons = Polygons(z["polygon_points"], z["polygon_rings"], z["polygon_rows"])
            problems = [Problem(*row) for row in z["problems"].tolist()]
            return ScanResult(**arrays, polygons=polygons, problems=problems, found=int(z["found"]), from_cache=True)
    except Exception:  # noqa: BLE001 - any unreadable cache is rebuilt
        return None


def _assemble(images: Sequence[Path], checked: list) -> ScanResult:
    files, shapes, rows, offsets, polygons, problems = [], [], [], [0], [], []
    for image, (shape, labels, image_problems) in zip(images, checked):
        image_problems = image_problems + labels.problems
        problems += image_problems
        if shape is None or any(p.level == ERROR for p in image_problems):
            continue
        files.append(str(image))
        shapes.append(shape)
        rows.append(labels.rows)
        offsets.append(offsets[-1] + len(labels.rows))
        polygons.append(labels.polygons)
    return ScanResult(
        files=np.array(files, dtype=str), shapes=np.array(shapes, np.int32).reshape(-1, 2),
        labels=np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, 5), np.float32),
        offsets=np.array(offsets, np.int64), polygons=Polygons.concat(polygons), problems=problems,
        found=len(images))


def scan_split(images: Sequence[Path], nc: int, coco: Sequence[Path] = (), strict: bool = False,
               use_cache: bool = True, split: str = "split") -> ScanResult:
    """Validate every image and label of a split; bad images are skipped and reported (strict: raise)."""
    images = [Path(p) for p in images]
    if not images:
        raise DatasetError(f"{split}: empty split (no images found)")
    sources = list(coco) if coco else [label_path(p) for p in images]
    fingerprint = _fingerprint(images, sources, nc)
    cache = cache_path(images, coco)
    result = _load_cache(cache, fingerprint) if use_cache else None
    if result is None:
        if coco:  # config lists COCO images in json order, which read_coco keeps
            labels = [v for json_file in coco for v in read_coco(json_file, nc).values()]
            checked = [(*check_image(p), ) for p in images]
            checked = [(shape, lab, problems) for (shape, problems), lab in zip(checked, labels)]
        else:
            with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
                checked = list(pool.map(lambda p: _check_yolo(p, nc), images))
        result = _assemble(images, checked)
        if use_cache:
            _save_cache(cache, fingerprint, result)
    serious = [p for p in result.problems if p.level in (ERROR, FIXED)]
    if strict and serious:
        listing = "\n  ".join(str(p) for p in serious[:20])
        raise DatasetError(f"{split}: {len(serious)} problem(s) in strict mode:\n  {listing}")
    if not len(result):
        raise DatasetError(f"{split}: no usable images ({result.found} found, all skipped); run `yolov9 data check`")
    return result


def format_report(result: ScanResult, split: str, max_lines: int = 50, listed: Optional[set] = None) -> str:
    """Problem lines (up to `max_lines`; those already in `listed` are not repeated, and get added to it) and a
    summary table of the scan (which counts every problem of the split)."""
    levels = {level: sum(p.level == level for p in result.problems) for level in (ERROR, FIXED, NOTE)}
    backgrounds = int((np.diff(result.offsets) == 0).sum())
    listed = set() if listed is None else listed
    new = [p for p in result.problems if p not in listed]
    listed.update(new)
    lines = [str(p) for p in new[:max_lines]]
    if len(new) > max_lines:
        lines.append(f"... and {len(new) - max_lines} more")
    if len(new) < len(result.problems):
        lines.append(f"({len(result.problems) - len(new)} problem(s) of {split} are listed above already)")
    header = f"{'split':<8}{'found':>8}{'used':>8}{'skipped':>9}{'backgr.':>9}{'boxes':>9}{'errors':>8}{'fixed':>7}{'notes':>7}"
    row = (f"{split:<8}{result.found:>8}{len(result):>8}{result.skipped:>9}{backgrounds:>9}{len(result.labels):>9}"
           f"{levels[ERROR]:>8}{levels[FIXED]:>7}{levels[NOTE]:>7}")
    source = " (from cache)" if result.from_cache else ""
    return "\n".join(lines + [header, row + source])
