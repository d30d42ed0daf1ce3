"""`Results`: what a model found in one image, in original-image pixels, with plotting and export helpers."""
from __future__ import annotations

import json
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
from yolov9.plots.drawing import draw_detections


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


@dataclass
class Results:
    """Detections of one image: `boxes` (a Boxes), the original image (H, W, 3) BGR uint8, where it came from,
    class names, the frame number in a video (None for images) and `speed` (preprocess / inference / postprocess
    ms per image)."""

    orig_img: np.ndarray
    path: str
    names: list[str]
    boxes: Boxes
    frame: Optional[int] = None
    speed: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def orig_shape(self) -> tuple[int, int]:
        return self.orig_img.shape[:2]

    def plot(self, line_width: int = 0) -> np.ndarray:
        """Annotated copy of the original image (H, W, 3) BGR uint8."""
        return draw_detections(self.orig_img, self.boxes.xyxy, self.boxes.conf, self.boxes.cls, self.names, line_width)

    def to_list(self) -> list[dict]:
        """One dict per detection: class id, name, confidence and box xyxy (original pixels)."""
        return [{"class": int(c), "name": self.names[int(c)], "confidence": round(float(s), 5),
                 "box": [round(float(v), 2) for v in b]}
                for b, s, c in zip(self.boxes.xyxy, self.boxes.conf, self.boxes.cls)]

    def to_json(self) -> str:
        return json.dumps(self.to_list())

    def to_yolo_txt(self, with_confidence: bool = False) -> str:
        """YOLO label lines "class cx cy w h [conf]", normalised to the original size."""
        return yolo_label_text(self.boxes.cls, self.boxes.xywhn, self.boxes.conf if with_confidence else None)

    def to_coco(self, image_id: Union[int, str], category_ids: Optional[Sequence] = None) -> list[dict]:
        """COCO results entries (see `yolov9.eval.coco_results`)."""
        return detection_rows(image_id, self.boxes.xyxy, self.boxes.conf, self.boxes.cls, category_ids)

    def save(self, path: Union[str, Path]) -> Path:
        """Write the annotated image (format by suffix, JPEG when there is none), atomically."""
        path = Path(path)
        ok, encoded = cv2.imencode(path.suffix or ".jpg", self.plot())
        if not ok:
            path = path.with_suffix(".jpg")
            ok, encoded = cv2.imencode(".jpg", self.plot())
        return atomic_write_bytes(path, encoded.tobytes())

    def save_txt(self, path: Union[str, Path], with_confidence: bool = False) -> Path:
        return atomic_write_bytes(path, self.to_yolo_txt(with_confidence).encode())

    def show(self, window: str = "yolov9") -> None:
        """Display the annotated image in an OpenCV window (needs a display and a GUI build of OpenCV)."""
        try:
            cv2.imshow(window, self.plot())
            cv2.waitKey(1)
        except cv2.error as e:
            raise YOLOv9Error(f"cannot show {self.path}: no display or no GUI support in OpenCV ({e.msg})") from None

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

