"""Generated videos of moving coloured rectangles with known boxes, and a 'detector' whose answer we know: per
colour, the bounding box of the pixels of that colour (exported to ONNX with our metadata)."""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
import torch
from torch import nn

FPS = 10


@dataclass(frozen=True)
class Mover:
    """A rectangle of `size` (w, h) whose centre moves linearly from `start` to `end` over frames first..last."""

    colour: tuple[int, int, int]  # BGR
    size: tuple[int, int]
    start: tuple[float, float]
    end: tuple[float, float]
    first: int
    last: int

    def box(self, frame: int) -> np.ndarray:
        t = (frame - self.first) / max(self.last - self.first, 1)
        cx, cy = np.array(self.start) + t * (np.array(self.end) - np.array(self.start))
        w, h = self.size
        return np.round([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]).astype(np.int64)


def render(movers: list[Mover], frames: int, size: tuple[int, int]) -> tuple[list[np.ndarray], list[dict]]:
    """BGR frames (h, w) = size on black, later movers drawn over earlier ones, and per frame {mover index: box}."""
    images, truth = [], []
    for f in range(frames):
        image = np.zeros((*size, 3), np.uint8)
        boxes = {}
        for i, mover in enumerate(movers):
            if mover.first <= f <= mover.last:
                x1, y1, x2, y2 = boxes[i] = mover.box(f)
                image[max(y1, 0):y2, max(x1, 0):x2] = mover.colour
        images.append(image)
        truth.append(boxes)
    return images, truth


def write_video(path: Path, images: list[np.ndarray], fps: float = FPS) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, images[0].shape[1::-1])
    for image in images:
        writer.write(image)
    writer.release()
    return path


class ColourBoxDetector(nn.Module):
    """Output (B, 4 + 1, K): per colour k (RGB in [0, 1], within `tolerance` on every channel) the xywh box of
    its pixels in input pixels, score 0.9 when at least `min_pixels` of them are there, else 0; one class."""

    def __init__(self, colours_rgb: np.ndarray, tolerance: float = 0.25, min_pixels: int = 20):
        super().__init__()
        self.register_buffer("colours", torch.as_tensor(np.asarray(colours_rgb, np.float32)))
        self.tolerance, self.min_pixels = tolerance, min_pixels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        near = (images[:, None] - self.colours[None, :, :, None, None]).abs().amax(2) < self.tolerance  # B,K,H,W
        near = near.float()
        h, w = images.shape[2:]
        xs, ys = torch.arange(w, dtype=torch.float32), torch.arange(h, dtype=torch.float32)
        cols, rows = near.amax(2), near.amax(3)  # (B, K, W), (B, K, H)
        x1 = (xs + (1 - cols) * 1e4).amin(2)
        x2 = (xs - (1 - cols) * 1e4).amax(2) + 1
        y1 = (ys + (1 - rows) * 1e4).amin(2)
        y2 = (ys - (1 - rows) * 1e4).amax(2) + 1
        score = 0.9 * (near.sum((2, 3)) >= self.min_pixels).float()
        return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, score), 1)


def export_detector(module: nn.Module, shape: tuple[int, int], names: list[str], path: Path) -> Path:
    """`module` as a fixed-shape (1, 3, h, w) ONNX model with our metadata (names, stride, imgsz)."""
    buffer = io.BytesIO()
    torch.onnx.export(module, (torch.zeros(1, 3, *shape),), buffer, opset_version=17, input_names=["images"],
                      output_names=["output"], dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    for key, value in {"names": json.dumps(names), "stride": "32", "nms": "false",
                       "imgsz": json.dumps(list(shape))}.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))
    return path


def colours_rgb(movers: list[Mover]) -> np.ndarray:
    return np.array([m.colour[::-1] for m in movers], np.float32) / 255


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU (n, 4) x (m, 4) xyxy -> (n, m), computed here independently of the package."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter)
