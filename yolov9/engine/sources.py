"""Input sources for prediction: an image, a folder, a glob, a .txt list, a video file, arrays, and live sources
(a webcam index, a stream URL, a `.streams` file of URLs; see `yolov9.engine.streams`).

`load_source(source)` returns an iterable of `Frame`s (BGR uint8 images as OpenCV reads them) with a length
for progress bars (0 when unknown: live sources); `vid_stride` N keeps every N-th frame of videos and streams.
"""
from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

import cv2
import numpy as np

from yolov9.data.config import IMAGE_SUFFIXES, VIDEO_SUFFIXES, image_problem
from yolov9.engine.streams import DEFAULT_TIMEOUT, STREAMS_SUFFIX, is_stream_url, live_frames, read_streams_file
from yolov9.errors import YOLOv9Error, warn

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
        raise YOLOv9Error(f"source {text!r} is not an image, video, folder, glob, .txt list, .streams list, stream "
                          "URL or webcam index")
    media = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES]
    if not media:
        raise YOLOv9Error(f"source {text!r} names no images or videos (suffixes {IMAGE_SUFFIXES + VIDEO_SUFFIXES})")
    return media


class Source:
    """Iterates frames of arrays, images, videos, then live sources, in order; `len()` counts images plus video
    frames (0 with a live source: it has no end known in advance).

    An image file that cannot be decoded, or is larger than MAX_IMAGE_PIXELS, is skipped with a warning and
    counted in `skipped` (one bad file in a folder does not stop the run). `vid_stride` N keeps frames 0, N,
    2N, ... of each video and stream; `stream_timeout`: seconds without a frame before a stream is dead.
    """

    def __init__(self, source: SourceLike, vid_stride: int = 1, stream_timeout: float = DEFAULT_TIMEOUT):
        if vid_stride < 1:
            raise YOLOv9Error(f"vid_stride must be >= 1, got {vid_stride}")
        self.vid_stride, self.stream_timeout = vid_stride, stream_timeout
        self.skipped: list[str] = []
        self.arrays: list[np.ndarray] = []
        self.files: list[Path] = []
        self.live: list[Union[str, int]] = []
        for item in [source] if isinstance(source, (str, Path, int, np.ndarray)) else source:
            self._add(item)

    def _add(self, item) -> None:
        if isinstance(item, np.ndarray):
            self.arrays.append(item)
        elif _is_webcam(item):
            self.live.append(int(item))
        elif is_stream_url(item):
            self.live.append(str(item))
        elif str(item).lower().endswith(STREAMS_SUFFIX) and Path(item).is_file():
            self.live.extend(read_streams_file(item))
        else:
            self.files.extend(_expand_path(str(item)))

    def __len__(self) -> int:
        if self.live:
            return 0
        return len(self.arrays) + sum(-(-_frame_count(f) // self.vid_stride) if f.suffix.lower() in VIDEO_SUFFIXES
                                      else 1 for f in self.files)

    def __iter__(self) -> Iterator[Frame]:
        for i, array in enumerate(self.arrays):
            yield Frame(np.ascontiguousarray(array), f"image{i}.jpg")
        for file in self.files:
            if file.suffix.lower() in VIDEO_SUFFIXES:
                yield from _video_frames(cv2.VideoCapture(str(file)), str(file), self.vid_stride)
            else:
                image, problem = read_image_file(file)
                if image is None:
                    warn(f"{file}: {problem}; skipped")
                    self.skipped.append(str(file))
                    continue
                yield Frame(image, str(file))
        for name, index, image in live_frames(self.live, self.vid_stride, self.stream_timeout) if self.live else ():
            yield Frame(image, name, index)


def read_image_file(file: Path) -> tuple[Optional[np.ndarray], str]:
    """(BGR image, "") or (None, why it cannot be used); the size is checked from the header before decoding."""
    problem = image_problem(file)
    image = None if problem else cv2.imread(str(file))
    return (image, "") if image is not None else (None, problem or "not a readable image")


def _frame_count(file: Path) -> int:
    capture = cv2.VideoCapture(str(file))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    return max(count, 0)


def _video_frames(capture: "cv2.VideoCapture", name: str, stride: int = 1) -> Iterator[Frame]:
    """Frames 0, stride, 2 stride, ... of a video file (the others are grabbed, not decoded)."""
    if not capture.isOpened():
        raise YOLOv9Error(f"{name}: cannot open the video")
    index = 0
    try:
        while capture.grab():
            if index % stride == 0:
                ok, image = capture.retrieve()
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


def load_source(source: Union[SourceLike, Source], vid_stride: int = 1, stream_timeout: float = DEFAULT_TIMEOUT
                ) -> Source:
    """A Source for anything `Source` accepts (a Source is returned as it is)."""
    return source if isinstance(source, Source) else Source(source, vid_stride, stream_timeout)
