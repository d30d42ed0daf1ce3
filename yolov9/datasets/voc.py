"""Pascal-VOC annotation files: one xml per image with `<size>` and `<object><name><bndbox>` entries."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import List

import numpy as np

from yolov9.errors import DatasetError


@dataclass
class VocAnnotation:
    """One image's boxes: `boxes` (n, 4) float32 x1, y1, x2, y2 in 0-based pixel edges, clipped to the image."""

    filename: str
    width: int
    height: int
    boxes: np.ndarray
    names: List[str]


def _number(element: ET.Element, tag: str, source: str) -> float:
    child = element.find(tag)
    if child is None or child.text is None:
        raise DatasetError(f"{source}: <{element.tag}> has no <{tag}> value")
    try:
        return float(child.text)
    except ValueError:
        raise DatasetError(f"{source}: <{tag}> is not a number: {child.text!r}") from None


def parse_voc(text: str, source: str = "<xml>") -> VocAnnotation:
    """Parse one VOC xml document; VOC's 1-based inclusive corners become 0-based pixel edges [xmin-1, xmax]."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise DatasetError(f"{source}: not valid xml ({e})") from None
    size = root.find("size")
    if size is None:
        raise DatasetError(f"{source}: missing <size> (image width and height)")
    width, height = int(_number(size, "width", source)), int(_number(size, "height", source))
    names, corners = [], []
    for obj in root.iter("object"):
        box = obj.find("bndbox")
        if box is None:
            raise DatasetError(f"{source}: an <object> has no <bndbox>")
        names.append((obj.findtext("name") or "").strip())
        corners.append([_number(box, tag, source) for tag in ("xmin", "ymin", "xmax", "ymax")])
    boxes = np.asarray(corners, dtype=np.float32).reshape(-1, 4)
    boxes[:, :2] -= 1.0
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
    empty = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    if empty.any():
        first = int(np.argmax(empty))
        raise DatasetError(f"{source}: object {first + 1} has an empty box {corners[first]}")
    return VocAnnotation(root.findtext("filename") or "", width, height, boxes, names)
