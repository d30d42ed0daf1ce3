"""Input sources for prediction: an image, a folder, a glob, a .txt list, a video file, a webcam, or arrays.

`load_source(source)` returns an iterable of `Frame`s (BGR uint8 images as OpenCV reads them) with a length
for progress bars and the video frame rate (for writing annotated videos).
"""
from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

import cv2
import numpy as np

from yolov9.data.config import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from yolov9.errors import YOLOv9Error

SourceLike = Union[str, Path, int, np.ndarray, Sequence[Union[str, Path, np.ndarray]]]


@dataclass
class Frame:
    """One image to run on: `image` (H, W, 3) BGR uint8, where it came from, and its frame number in a video."""

    image: np.ndarray
    path: str
    frame: Optional[int] = None


def _is_webcam(source) -> bool:
    return isinstance(source, int) or (isinstance(source, str) and source.isdigit())


def _expand_path(text: str) -> list[Path]:
    """A file, folder, glob or .txt list -> the files it names (sorted for folders and globs)."""
    path = Path(text).expanduser()
    if any(c in text for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True))
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
    elif path.suffix.lower() == ".txt" and path.is_file():
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        files = [(path.parent / line) if not Path(line).is_absolute() else Path(line) for line in lines]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise YOLOv9Error(f"{path}: {len(missing)} listed file(s) do not exist, e.g. {missing[0]}")
    elif path.is_file():
        files = [path]
    else:
        raise YOLOv9Error(f"source {text!r} is not an image, video, folder, glob, .txt list or webcam index")
    media = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES]
    if not media:
        raise YOLOv9Error(f"source {text!r} names no images or videos (suffixes {IMAGE_SUFFIXES + VIDEO_SUFFIXES})")
    return media


class Source:
    """Iterates frames of images, videos and webcams in order; `len()` counts images plus video frames."""

    def __init__(self, source: SourceLike):
        self.arrays: list[np.ndarray] = []
        self.files: list[Path] = []
        self.webcam: Optional[int] = None
        if _is_webcam(source):
            self.webcam = int(source)
        elif isinstance(source, np.ndarray):
            self.arrays = [source]
        elif isinstance(source, (str, Path)):
            self.files = _expand_path(str(source))
        else:
            for item in source:
                if isinstance(item, np.ndarray):
                    self.arrays.append(item)
                else:
                    self.files.extend(_expand_path(str(item)))

    def __len__(self) -> int:
        if self.webcam is not None:
            return 0
        return len(self.arrays) + sum(_frame_count(f) if f.suffix.lower() in VIDEO_SUFFIXES else 1
                                      for f in self.files)

    def __iter__(self) -> Iterator[Frame]:
        for i, array in enumerate(self.arrays):
            yield Frame(np.ascontiguousarray(array), f"image{i}.jpg")
        for file in self.files:
            if file.suffix.lower() in VIDEO_SUFFIXES:
                yield from _video_frames(cv2.VideoCapture(str(file)), str(file))
            else:
                image = cv2.imread(str(file))
                if image is None:
                    raise YOLOv9Error(f"{file}: cannot be read as an image")
                yield Frame(image, str(file))
        if self.webcam is not None:
            yield from _video_frames(cv2.VideoCapture(self.webcam), f"webcam{self.webcam}.mp4")


def _frame_count(file: Path) -> int:
    capture = cv2.VideoCapture(str(file))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    return max(count, 0)


def _video_frames(capture: "cv2.VideoCapture", name: str) -> Iterator[Frame]:
    if not capture.isOpened():
        raise YOLOv9Error(f"{name}: cannot open the video or camera")
    index = 0
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            yield Frame(image, name, index)
            index += 1
    finally:
        capture.release()


def video_fps(path: str, default: float = 30.0) -> float:
    """Frame rate of a video file (for the annotated copy); `default` when unknown."""
    capture = cv2.VideoCapture(path)
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return fps if fps and fps > 0 else default


def load_source(source: SourceLike) -> Source:
    return Source(source)
