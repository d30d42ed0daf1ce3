"""Label formats: YOLO txt (one `cls cx cy w h` or `cls x1 y1 x2 y2 ...` polygon per line) and COCO json.

Both are read into the same rows: (n, 5) float32 [class, cx, cy, w, h] normalised, plus the normalised outlines of
the rows as `Polygons` (several rings per row from COCO; none for a plain box). Every problem is a `Problem`
naming the file and line.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NamedTuple, Optional, Sequence, Union

import cv2
import numpy as np

from yolov9.data.config import coco_image_folder, read_json, write_data_yaml
from yolov9.data.polygons import Polygons, merge_rings
from yolov9.errors import DatasetError, YOLOv9Error
from yolov9.io.atomic import atomic_write_bytes
from yolov9.ops.boxes import ltwh2xyxy, normalize_boxes, xywh2xyxy, xyxy2xywh
from yolov9.ops.rle import RunLengths

COORD_TOLERANCE = 0.01  # normalised coordinates within [-tol, 1 + tol] are clipped, beyond are errors
ROUND_OFF = 1e-5  # overshoot of labels written with ~6 decimals: clipped without a report
ERROR, FIXED, NOTE = "error", "fixed", "note"  # error: image skipped; fixed: repaired, image kept; note: converted


class Problem(NamedTuple):
    file: str
    line: str  # "3" for a txt line, "annotation 17" for COCO, "" for the whole file
    level: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.level}: {self.message}"


class Labels(NamedTuple):
    rows: np.ndarray  # (n, 5) float32
    polygons: Polygons  # n objects, normalised (rings cut to [0, 1])
    problems: list


def parse_yolo_label(text: str, nc: int, file: str) -> Labels:
    """Parse and validate the text of one YOLO label file."""
    rows, objects, lines, problems = [], [], [], []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            values = np.array([float(v) for v in fields], np.float64)
        except ValueError:
            bad = next(v for v in fields if not _is_float(v))
            problems.append(Problem(file, str(number), ERROR, f"non-numeric value {bad!r}"))
            continue
        if len(values) == 5:
            rows.append(values)
            objects.append([])
        elif len(values) >= 7 and len(values) % 2 == 1:
            polygon = values[1:].reshape(-1, 2)
            lo, hi = polygon.min(0), polygon.max(0)
            rows.append(np.concatenate(([values[0]], xyxy2xywh(np.concatenate((lo, hi))))))
            objects.append([polygon])
        else:
            problems.append(Problem(file, str(number), ERROR,
                                    f"{len(values)} values; expected 5 (cls cx cy w h) or an odd number >= 7 (polygon)"))
            continue
        lines.append(str(number))
    array = np.array(rows, np.float64).reshape(-1, 5)
    return validate_rows(array, objects, lines, nc, file, problems)


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def validate_rows(rows: np.ndarray, objects: list, lines: list, nc: int, file: str,
                  problems: Optional[list] = None) -> Labels:
    """Check class ids, finiteness, range and area of rows (n, 5) and their rings (`objects`: per row a list of
    normalised (k, 2) rings); clip small overshoots (rings are cut to [0, 1]), drop duplicates."""
    problems = list(problems or [])
    keep = np.ones(len(rows), bool)
    finite = np.isfinite(rows).all(1) & np.array([all(np.isfinite(r).all() for r in obj) for obj in objects], bool)
    cls = rows[:, 0]
    bad_class = finite & ((cls < 0) | (cls >= nc) | (cls != np.round(cls)))
    xyxy = xywh2xyxy(rows[:, 1:5])
    outside = finite & ~bad_class & ((xyxy < -COORD_TOLERANCE) | (xyxy > 1 + COORD_TOLERANCE)).any(1)
    for i in np.flatnonzero(~finite):
        problems.append(Problem(file, lines[i], ERROR, "NaN or infinite value"))
    for i in np.flatnonzero(bad_class):
        problems.append(Problem(file, lines[i], ERROR, f"class id {cls[i]:g} is not an integer in 0..{nc - 1}"))
    for i in np.flatnonzero(outside):
        kind = "polygon with box" if objects[i] else "box"
        problems.append(Problem(file, lines[i], ERROR, f"{kind} {np.round(xyxy[i], 4).tolist()} outside [0, 1] "
                                                       f"beyond tolerance {COORD_TOLERANCE}"))
    keep &= finite & ~bad_class & ~outside
    clipped = np.clip(xyxy, 0, 1)
    overshoot = keep & (np.abs(clipped - xyxy) > ROUND_OFF).any(1)
    for i in np.flatnonzero(overshoot):
        problems.append(Problem(file, lines[i], FIXED, "coordinates slightly outside [0, 1]; clipped"))
    xyxy = np.where(keep[:, None], clipped, 0)
    wh = xyxy[:, 2:] - xyxy[:, :2]
    zero = keep & (wh <= 0).any(1)
    for i in np.flatnonzero(zero):
        problems.append(Problem(file, lines[i], FIXED, "zero-area box; row dropped"))
    keep &= ~zero
    cleaned = np.concatenate((cls[:, None], xyxy2xywh(xyxy)), 1)
    _, first, group = np.unique(np.where(keep[:, None], cleaned, np.nan).round(6), axis=0, return_index=True,
                                return_inverse=True)
    duplicate = keep.copy()
    duplicate[first] = False
    for i in np.flatnonzero(duplicate):  # same class and box as an earlier row: a duplicate if the rings agree too
        duplicate[i] = _same_rings(objects[i], objects[first[group[i]]])
        if duplicate[i]:
            problems.append(Problem(file, lines[i], FIXED, "duplicate row; dropped"))
    keep &= ~duplicate
    if any(p.level == ERROR for p in problems):
        keep[:] = False
    index = np.flatnonzero(keep)
    polygons = Polygons.from_rings([objects[i] for i in index]).clip(0, 0, 1, 1)
    return Labels(cleaned[index].astype(np.float32), polygons, problems)


def _same_rings(a: list, b: list) -> bool:
    return len(a) == len(b) and all(np.shape(p) == np.shape(q) and np.allclose(p, q, atol=1e-6) for p, q in zip(a, b))


def read_coco(json_file: Union[str, Path], nc: Optional[int] = None) -> dict[str, Labels]:
    """Labels of every image in a COCO json, keyed by image file name (category ids sorted -> 0..nc-1).

    Crowd annotations (`iscrowd` 1) are skipped, as in the official COCO conversion: they mark regions of many
    objects that training must neither reward nor punish. An object's `segmentation` polygons are all kept (its
    mask is their union); an RLE mask (compressed or not) becomes the outer contours of its parts (holes are
    filled; rasterised at the RLE's size they give back its pixels). Rows take their box from `bbox`.
    """
    data = read_json(Path(json_file))
    try:
        return _coco_labels(data, json_file, nc)
    except (KeyError, TypeError, ValueError) as e:
        raise DatasetError(f"{json_file}: not a COCO detection json ({type(e).__name__}: {e}); images need id, "
                           "file_name, width and height, annotations image_id, category_id and bbox") from None


def _coco_labels(data: dict, json_file: Union[str, Path], nc: Optional[int]) -> dict[str, Labels]:
    category_ids = sorted(c["id"] for c in data["categories"])
    to_class = {cid: i for i, cid in enumerate(category_ids)}
    nc = len(category_ids) if nc is None else nc
    per_image: dict[int, list] = {image["id"]: [] for image in data["images"]}
    for annotation in data.get("annotations", []):
        if not annotation.get("iscrowd", 0):
            per_image.setdefault(annotation["image_id"], []).append(annotation)
    out = {}
    for image in data["images"]:
        w, h = float(image["width"]), float(image["height"])
        annotations = per_image[image["id"]]
        objects, lines, problems = [], [f"annotation {a.get('id', '?')}" for a in annotations], []
        classes = np.array([to_class.get(a["category_id"], -1) for a in annotations], np.float64)
        boxes = np.array([a["bbox"] for a in annotations], np.float64).reshape(-1, 4)
        xywh = normalize_boxes(xyxy2xywh(ltwh2xyxy(boxes)), (h, w))
        for a, line in zip(annotations, lines):
            rings, problem = coco_rings(a.get("segmentation"), (h, w))
            objects.append(rings)
            if problem:
                problems.append(Problem(str(json_file), line, *problem))
        rows = np.concatenate((classes[:, None], xywh), 1)
        out[image["file_name"]] = validate_rows(rows, objects, lines, nc, str(json_file), problems)
    return out


def coco_rings(segmentation, shape: tuple[float, float]) -> tuple[list[np.ndarray], Optional[tuple[str, str]]]:
    """A COCO `segmentation` (polygons [[x1, y1, ...], ...] or RLE {"size", "counts"}) of an image of `shape`
    (h, w) -> its normalised rings (k, 2), and a problem (level, message) or None.

    Unusable polygons are dropped (fixed); an unreadable RLE is an error (the image is skipped, like a bad row).
    """
    if not segmentation:
        return [], None
    h, w = shape
    if isinstance(segmentation, list):
        flat = [np.asarray(p, np.float64).ravel() for p in segmentation]
        usable = [p for p in flat if len(p) >= 6 and len(p) % 2 == 0]
        dropped = len(flat) - len(usable)
        problem = (FIXED, f"{dropped} polygon(s) with fewer than 3 points or an odd number of values; dropped")
        return [p.reshape(-1, 2) / (w, h) for p in usable], problem if dropped else None
    try:
        size = np.array(segmentation["size"], np.int64).reshape(1, 2)
        mask = RunLengths.from_counts([segmentation["counts"]], size).to_masks()[0]
    except (YOLOv9Error, KeyError, TypeError, ValueError) as e:
        return [], (ERROR, f"unreadable RLE segmentation ({e})")
    contours = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0]
    rh, rw = size[0]  # outlines through the centres of the boundary pixels
    return [(c.reshape(-1, 2) + 0.5) / (float(rw), float(rh)) for c in contours], None


def yolo_label_text(classes: np.ndarray, coordinates: Sequence[np.ndarray],
                    confidences: Optional[np.ndarray] = None) -> str:
    """YOLO txt: one line per object, its class, its normalised coordinates (`cx cy w h`, or a polygon
    `x1 y1 x2 y2 ...`) with 6 decimals, then its confidence (5 decimals) when given."""
    lines = []
    for i, (cls, values) in enumerate(zip(classes, coordinates)):
        line = " ".join([str(int(cls))] + [f"{v:.6f}" for v in np.ravel(values)])
        lines.append(line + (f" {confidences[i]:.5f}" if confidences is not None else "") + "\n")
    return "".join(lines)


def format_yolo_rows(labels: Labels) -> str:
    """YOLO txt text of scanned rows (polygons written where present; several rings of one object are joined
    into one outline by `merge_rings`)."""
    coordinates = [merge_rings(rings) if rings else row[1:] for row, rings in zip(labels.rows,
                                                                                  labels.polygons.object_rings())]
    return yolo_label_text(labels.rows[:, 0], coordinates)


def coco_to_yolo(json_file: Union[str, Path], out_dir: Union[str, Path], image_folder: Optional[Path] = None) -> Path:
    """Convert a COCO json to a YOLO dataset: `images/<split>` (hard links or copies), `labels/<split>/*.txt`
    and `data.yaml`. Returns the data.yaml path."""
    json_file, out_dir = Path(json_file), Path(out_dir)
    split = json_file.stem.replace("instances_", "")
    image_folder = image_folder or coco_image_folder(json_file, json_file.parent.parent)
    data = read_json(json_file)
    names = [c["name"] for c in sorted(data["categories"], key=lambda c: c["id"])]
    images_out, labels_out = out_dir / "images" / split, out_dir / "labels" / split
    images_out.mkdir(parents=True, exist_ok=True)
    labels_out.mkdir(parents=True, exist_ok=True)
    for file_name, labels in read_coco(json_file).items():
        source, target = image_folder / file_name, images_out / file_name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_file() and not target.exists():
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)
        label_file = (labels_out / file_name).with_suffix(".txt")
        label_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(label_file, format_yolo_rows(labels).encode())
    yaml_file = out_dir / "data.yaml"
    write_data_yaml(yaml_file, names, {"train": f"images/{split}", "val": f"images/{split}"})
    return yaml_file
