"""`Results`: what a model found in one image, in original-image pixels, with plotting and export helpers
(boxes; for segmentation models also one mask per box)."""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import cv2
import numpy as np

from yolov9.data.formats import yolo_label_text
from yolov9.errors import YOLOv9Error
from yolov9.eval.coco_results import detection_rows
from yolov9.io.atomic import atomic_write_bytes
from yolov9.ops.boxes import normalize_boxes, xyxy2xywh
from yolov9.ops.masks import masks_to_polygons
from yolov9.plots.drawing import draw_detections, draw_masks, draw_trails


class Boxes:
    """Detected boxes of one image: `data` (n, 6) [x1, y1, x2, y2, conf, cls] float32 in original pixels, or
    (n, 7) with a track id last; `orig_shape` (h, w) for the normalised forms."""

    def __init__(self, data: np.ndarray, orig_shape: Sequence[int]):
        data = np.asarray(data, np.float32)
        self.data = data if data.ndim == 2 else data.reshape(-1, 6)
        self.orig_shape = (int(orig_shape[0]), int(orig_shape[1]))

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index) -> "Boxes":
        return Boxes(self.data[index].reshape(-1, self.data.shape[1]), self.orig_shape)

    @property
    def xyxy(self) -> np.ndarray:
        """(n, 4) x1, y1, x2, y2 pixels."""
        return self.data[:, :4]

    @property
    def xywh(self) -> np.ndarray:
        """(n, 4) centre x, centre y, width, height pixels."""
        return xyxy2xywh(self.xyxy)

    @property
    def xyxyn(self) -> np.ndarray:
        return normalize_boxes(self.xyxy, self.orig_shape)

    @property
    def xywhn(self) -> np.ndarray:
        """(n, 4) xywh as fractions of the image size (the YOLO label form)."""
        return normalize_boxes(self.xywh, self.orig_shape)

    @property
    def conf(self) -> np.ndarray:
        return self.data[:, 4]

    @property
    def cls(self) -> np.ndarray:
        return self.data[:, 5].astype(np.int64)

    @property
    def id(self) -> Optional[np.ndarray]:
        """(n,) track ids when the boxes come from a tracker, else None."""
        return self.data[:, 6].astype(np.int64) if self.data.shape[1] > 6 else None


class Masks:
    """Instance masks of one image, one per detection in box order: `data` (n, H, W) bool in original pixels."""

    def __init__(self, data: np.ndarray):
        self.data = np.asarray(data, dtype=bool)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index) -> "Masks":
        return Masks(self.data[index].reshape(-1, *self.data.shape[1:]))

    @property
    def xy(self) -> list[np.ndarray]:
        """Per mask its outline (k, 2) float32 xy in original pixels (the largest contour; (0, 2) when empty)."""
        return masks_to_polygons(self.data)

    @property
    def xyn(self) -> list[np.ndarray]:
        """The outlines as fractions of the image size (the YOLO-seg label form)."""
        h, w = self.data.shape[1:]
        return [polygon / np.array([w, h], np.float32) for polygon in self.xy]


@dataclass
class Results:
    """Detections of one image: `boxes` (a Boxes), the original image (H, W, 3) BGR uint8, where it came from,
    class names, the frame number in a video (None for images), `speed` (preprocess / inference / postprocess
    ms per image), for segmentation models `masks` (a Masks, one per box; None for detection) and, when tracked,
    `trails` (per box the recent centres (k, 2) xy of its track, oldest first; the ids are `boxes.id`)."""

    orig_img: np.ndarray
    path: str
    names: list[str]
    boxes: Boxes
    frame: Optional[int] = None
    speed: dict = field(default_factory=dict)
    masks: Optional[Masks] = None
    trails: Optional[list[np.ndarray]] = None

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def orig_shape(self) -> tuple[int, int]:
        return self.orig_img.shape[:2]

    @property
    def polygons(self) -> Optional[list[np.ndarray]]:
        """Per detection the outline (k, 2) of its mask in original pixels; None without masks."""
        return None if self.masks is None else self.masks.xy

    def plot(self, line_width: int = 0) -> np.ndarray:
        """Annotated copy of the original image (H, W, 3) BGR uint8 (masks overlaid in class colours; tracked
        boxes labelled with their id and coloured by it, with their trails)."""
        image = self.orig_img if self.masks is None else draw_masks(self.orig_img, self.masks.data, self.boxes.cls)
        if self.trails is not None and self.boxes.id is not None:
            image = draw_trails(image, self.trails, self.boxes.id, line_width)
        return draw_detections(image, self.boxes.xyxy, self.boxes.conf, self.boxes.cls, self.names, line_width,
                               self.boxes.id)

    def to_list(self) -> list[dict]:
        """One dict per detection: class id, name, confidence, box xyxy, (tracked) `track_id` and (with masks)
        the mask's outline polygon [[x, y], ...] (original pixels)."""
        rows = [{"class": int(c), "name": self.names[int(c)], "confidence": round(float(s), 5),
                 "box": [round(float(v), 2) for v in b]}
                for b, s, c in zip(self.boxes.xyxy, self.boxes.conf, self.boxes.cls)]
        for row, track in zip(rows, [] if self.boxes.id is None else self.boxes.id.tolist()):
            row["track_id"] = track
        for row, polygon in zip(rows, self.polygons or []):
            row["polygon"] = np.round(polygon, 2).tolist()
        return rows

    def to_json(self) -> str:
        return json.dumps(self.to_list())

    def to_yolo_txt(self, with_confidence: bool = False) -> str:
        """YOLO label lines "class cx cy w h [conf]", normalised to the original size; with masks YOLO-seg lines
        "class x1 y1 x2 y2 ... [conf]" (the mask's outline; its box when the outline has fewer than 3 points)."""
        coordinates = self.boxes.xywhn if self.masks is None else [
            polygon if len(polygon) >= 3 else box for polygon, box in zip(self.masks.xyn, self.boxes.xywhn)]
        return yolo_label_text(self.boxes.cls, coordinates, self.boxes.conf if with_confidence else None)

    def to_coco(self, image_id: Union[int, str], category_ids: Optional[Sequence] = None) -> list[dict]:
        """COCO results entries, with RLE `segmentation` when there are masks (see `yolov9.eval.coco_results`)."""
        return detection_rows(image_id, self.boxes.xyxy, self.boxes.conf, self.boxes.cls, category_ids,
                              None if self.masks is None else self.masks.data)

    def save(self, path: Union[str, Path, None] = None) -> Path:
        """Write the annotated image, atomically, to `path` (default: the source's file name in the current
        folder; video frames `<stem>_<frame>.jpg`). The format follows the suffix; JPEG when OpenCV has no encoder
        for it."""
        source = Path(self.path)
        path = Path(path) if path is not None else Path(source.name if self.frame is None else
                                                        f"{source.stem}_{self.frame}.jpg")
        try:
            ok, encoded = cv2.imencode(path.suffix or ".jpg", self.plot())
        except cv2.error:
            ok = False
        if not ok:
            path = path.with_suffix(".jpg")
            _, encoded = cv2.imencode(".jpg", self.plot())
        return atomic_write_bytes(path, encoded.tobytes())

    def save_txt(self, path: Union[str, Path], with_confidence: bool = False) -> Path:
        return atomic_write_bytes(path, self.to_yolo_txt(with_confidence).encode())

    def show(self, window: str = "yolov9") -> None:
        """Display the annotated image in an OpenCV window (needs a display and a GUI build of OpenCV; without
        them a YOLOv9Error says so, instead of the GUI toolkit aborting the process)."""
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise YOLOv9Error(f"cannot show {self.path}: no display (DISPLAY is not set); use save() or plot()")
        try:
            cv2.imshow(window, self.plot())
            cv2.waitKey(1)
        except cv2.error as e:
            raise YOLOv9Error(f"cannot show {self.path}: no GUI support in this OpenCV build "
                              f"(opencv-python-headless); use save() or plot() ({e.msg.splitlines()[0]})") from None

    def crops(self) -> list[tuple[str, np.ndarray]]:
        """(class name, BGR crop) per detection, boxes rounded to whole pixels."""
        out = []
        for box, cls in zip(self.boxes.xyxy.round().astype(int), self.boxes.cls):
            x1, y1, x2, y2 = box
            if x2 > x1 and y2 > y1:
                out.append((self.names[int(cls)], self.orig_img[y1:y2, x1:x2].copy()))
        return out

    def save_crops(self, folder: Path, stem: str) -> None:
        for i, (name, crop) in enumerate(self.crops()):
            ok, encoded = cv2.imencode(".jpg", crop)
            if ok:
                atomic_write_bytes(Path(folder) / name / f"{stem}_{i}.jpg", encoded.tobytes())

