"""`Results`: the detections of one image in original-image pixels, with plotting and export helpers."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from yolov9.engine.drawing import draw_detections


@dataclass
class Results:
    """Detections of one image.

    boxes (n, 4) float32 xyxy in original pixels; scores (n,) float32; classes (n,) int64; names: class names;
    orig_img (H, W, 3) BGR uint8; path: where the image came from; frame: index in a video (None for images).
    """

    orig_img: np.ndarray
    path: str
    names: list[str]
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    classes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    frame: Optional[int] = None

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def orig_shape(self) -> tuple[int, int]:
        return self.orig_img.shape[:2]

    def plot(self, line_width: int = 0) -> np.ndarray:
        """Annotated copy of the original image (H, W, 3) BGR uint8."""
        return draw_detections(self.orig_img, self.boxes, self.scores, self.classes, self.names, line_width)

    def to_list(self) -> list[dict]:
        """One dict per detection: class id, name, confidence and box xyxy (original pixels)."""
        return [{"class": int(c), "name": self.names[int(c)], "confidence": round(float(s), 5),
                 "box": [round(float(v), 2) for v in b]}
                for b, s, c in zip(self.boxes, self.scores, self.classes)]

    def to_json(self) -> str:
        return json.dumps(self.to_list())

    def to_yolo_txt(self, with_confidence: bool = False) -> str:
        """YOLO label lines "class cx cy w h [conf]", normalised to the original size."""
        h, w = self.orig_shape
        lines = []
        for (x1, y1, x2, y2), score, cls in zip(self.boxes, self.scores, self.classes):
            values = [(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h]
            text = f"{int(cls)} " + " ".join(f"{v:.6f}" for v in values)
            lines.append(text + (f" {score:.5f}" if with_confidence else ""))
        return "\n".join(lines) + ("\n" if lines else "")

    def to_coco(self, image_id) -> list[dict]:
        """COCO results entries: bbox [x, y, w, h] in original pixels, category_id = class index."""
        return [{"image_id": image_id, "category_id": int(c), "score": round(float(s), 5),
                 "bbox": [round(float(b[0]), 3), round(float(b[1]), 3),
                          round(float(b[2] - b[0]), 3), round(float(b[3] - b[1]), 3)]}
                for b, s, c in zip(self.boxes, self.scores, self.classes)]

    def crops(self) -> list[tuple[str, np.ndarray]]:
        """(class name, BGR crop) per detection, boxes rounded to whole pixels."""
        out = []
        for box, cls in zip(self.boxes.round().astype(int), self.classes):
            x1, y1, x2, y2 = box
            if x2 > x1 and y2 > y1:
                out.append((self.names[int(cls)], self.orig_img[y1:y2, x1:x2].copy()))
        return out

    def save_crops(self, folder: Path, stem: str) -> None:
        for i, (name, crop) in enumerate(self.crops()):
            target = Path(folder) / name
            target.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(target / f"{stem}_{i}.jpg"), crop)
