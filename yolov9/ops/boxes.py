"""Pure, vectorised box operations. Boxes are (..., 4), xyxy unless a name says otherwise.

Conversions take torch tensors or numpy arrays and return the same kind (same dtype): the one place where
xyxy <-> xywh (centre) <-> ltwh (COCO's [x, y, w, h]) and normalisation are written. The IoU family is torch.
"""
from __future__ import annotations

import math
from typing import Sequence, TypeVar, Union

import numpy as np
import torch

Array = TypeVar("Array", torch.Tensor, np.ndarray)


def _join(parts: Sequence, like) -> Union[torch.Tensor, np.ndarray]:
    return torch.cat(tuple(parts), -1) if isinstance(like, torch.Tensor) else np.concatenate(tuple(parts), -1)


def xywh2xyxy(boxes: Array) -> Array:
    """(cx, cy, w, h) -> (x1, y1, x2, y2)."""
    xy, wh = boxes[..., :2], boxes[..., 2:4]
    return _join((xy - wh / 2, xy + wh / 2), boxes)


def xyxy2xywh(boxes: Array) -> Array:
    """(x1, y1, x2, y2) -> (cx, cy, w, h)."""
    x1y1, x2y2 = boxes[..., :2], boxes[..., 2:4]
    return _join(((x1y1 + x2y2) / 2, x2y2 - x1y1), boxes)


def xyxy2ltwh(boxes: Array) -> Array:
    """(x1, y1, x2, y2) -> (x1, y1, w, h), COCO's `bbox` layout."""
    return _join((boxes[..., :2], boxes[..., 2:4] - boxes[..., :2]), boxes)


def ltwh2xyxy(boxes: Array) -> Array:
    """COCO's (x1, y1, w, h) -> (x1, y1, x2, y2)."""
    return _join((boxes[..., :2], boxes[..., :2] + boxes[..., 2:4]), boxes)


def _size_scale(shape: Sequence[int], like) -> Union[torch.Tensor, np.ndarray]:
    h, w = shape
    if isinstance(like, torch.Tensor):
        return like.new_tensor([w, h, w, h])
    return np.array([w, h, w, h], dtype=like.dtype if like.dtype.kind == "f" else np.float64)


def normalize_boxes(boxes: Array, shape: Sequence[int]) -> Array:
    """Pixel boxes (any 4-value layout) of an image of shape (h, w) -> fractions of the image size."""
    return boxes / _size_scale(shape, boxes)


def denormalize_boxes(boxes: Array, shape: Sequence[int]) -> Array:
    """Boxes as fractions of an image of shape (h, w) -> pixels."""
    return boxes * _size_scale(shape, boxes)


def clip_boxes(boxes: Array, shape: Sequence[int]) -> Array:
    """Clip xyxy boxes to an image of shape (h, w)."""
    h, w = shape
    if isinstance(boxes, torch.Tensor):
        return torch.minimum(boxes.clamp(min=0), boxes.new_tensor([w, h, w, h]))
    return np.clip(boxes, 0, np.array([w, h, w, h], dtype=boxes.dtype))


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) xyxy -> (...) areas (0 for inverted boxes)."""
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Pairwise IoU: (N, 4) x (M, 4) -> (N, M)."""
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.min(boxes1[:, None, 2:4], boxes2[None, :, 2:4])
    inter = (rb - lt).clamp(min=0).prod(-1)
    return inter / (box_area(boxes1)[:, None] + box_area(boxes2)[None, :] - inter + eps)


def bbox_iou(box1: torch.Tensor, box2: torch.Tensor, xywh: bool = False, kind: str = "iou",
             eps: float = 1e-7) -> torch.Tensor:
    """Aligned (broadcast) IoU / GIoU / DIoU / CIoU of (..., 4) boxes -> (..., 1); pairwise via box1[:, None].

    `kind` is one of 'iou', 'giou', 'diou', 'ciou', with the official YOLOv9 formulas (heights carry `eps`; the
    CIoU trade-off factor alpha is a constant for autograd). Degenerate boxes give finite values.
    Ranges: IoU [0, 1]; GIoU and DIoU [-1, 1]; CIoU [-1.5, 1] (the aspect term adds at most 0.5 when IoU is 0).
    """
    if xywh:
        box1, box2 = xywh2xyxy(box1), xywh2xyxy(box2)
    b1_x1, b1_y1, b1_x2, b1_y2 = box1.chunk(4, -1)
    b2_x1, b2_y1, b2_x2, b2_y2 = box2.chunk(4, -1)
    w1, h1 = b1_x2 - b1_x1, b1_y2 - b1_y1 + eps
    w2, h2 = b2_x2 - b2_x1, b2_y2 - b2_y1 + eps
    inter = ((b1_x2.minimum(b2_x2) - b1_x1.maximum(b2_x1)).clamp(min=0)
             * (b1_y2.minimum(b2_y2) - b1_y1.maximum(b2_y1)).clamp(min=0))
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    if kind == "iou":
        return iou
    cw = b1_x2.maximum(b2_x2) - b1_x1.minimum(b2_x1)  # enclosing box
    ch = b1_y2.maximum(b2_y2) - b1_y1.minimum(b2_y1)
    if kind == "giou":
        c_area = torch.maximum(cw * ch + eps, union)  # >= union also for zero-height boxes (h carries eps)
        return iou - (c_area - union) / c_area
    c2 = cw ** 2 + ch ** 2 + eps  # squared diagonal of the enclosing box
    rho2 = ((b2_x1 + b2_x2 - b1_x1 - b1_x2) ** 2 + (b2_y1 + b2_y2 - b1_y1 - b1_y2) ** 2) / 4
    if kind == "diou":
        return iou - rho2 / c2
    if kind == "ciou":
        v = (4 / math.pi ** 2) * (torch.atan(w2 / h2) - torch.atan(w1 / h1)).pow(2)
        with torch.no_grad():
            alpha = v / (v - iou + (1 + eps))
        return iou - (rho2 / c2 + v * alpha)
    raise ValueError(f"unknown IoU kind {kind!r}; use iou, giou, diou or ciou")
