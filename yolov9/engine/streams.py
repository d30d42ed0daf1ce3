"""Live sources: network streams (rtsp, rtmp, http(s), tcp, udp URLs; a `.streams` file lists one per line) and
webcams, each read by its own thread that keeps only the newest frame.

A consumer slower than the stream gets the latest picture rather than a growing backlog (frames in between are
dropped); `vid_stride` N decodes only every N-th frame. A stream that cannot be opened, or that delivers no frame
for `timeout` seconds, is one clear `StreamError` instead of a hang; a stream the server closes ends with a warning.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

import cv2
import numpy as np

from yolov9.errors import YOLOv9Error, warn

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "tcp://", "udp://")
STREAMS_SUFFIX = ".streams"
DEFAULT_TIMEOUT = 10.0  # seconds without a frame before a stream counts as dead


class StreamError(YOLOv9Error):
    """A stream cannot be opened or stopped delivering frames."""


def is_stream_url(text: object) -> bool:
    return isinstance(text, str) and text.lower().startswith(STREAM_SCHEMES)


def read_streams_file(path: Union[str, Path]) -> list[str]:
    """The URLs of a `.streams` file: one per line; blank lines and lines starting with # are skipped."""
    path = Path(path)
    lines = [line.strip() for line in path.read_text().splitlines()]
    urls = [line for line in lines if line and not line.startswith("#")]
    bad = [u for u in urls if not is_stream_url(u)]
    if bad or not urls:
        raise StreamError(f"{path}: " + (f"{bad[0]!r} is not a stream URL ({', '.join(STREAM_SCHEMES)})" if bad
                                         else "lists no stream URLs"))
    return urls


class StreamReader:
    """One stream (a URL or a webcam index) read on a daemon thread; `latest()` waits for a frame newer than the
    last one it returned."""

    def __init__(self, source: Union[str, int], vid_stride: int = 1, timeout: float = DEFAULT_TIMEOUT):
        self.name = source if isinstance(source, str) else f"webcam{source}.mp4"
        self.vid_stride, self.timeout = vid_stride, timeout
        if isinstance(source, str):
            milliseconds = int(timeout * 1000)
            self.capture = cv2.VideoCapture(source, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, milliseconds,
                                                                     cv2.CAP_PROP_READ_TIMEOUT_MSEC, milliseconds])
        else:
            self.capture = cv2.VideoCapture(source)
        if not self.capture.isOpened():
            raise StreamError(f"{self.name}: cannot open the stream (nothing answers there, or it is not a video)"
                              if isinstance(source, str) else f"webcam {source}: cannot open the camera")
        self.frame_count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))  # <= 0 for live streams
        self.condition = threading.Condition()
        self.newest: Optional[tuple[int, np.ndarray]] = None
        self.returned = -1
        self.ended = False
        self.error: Optional[str] = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._read, name=f"stream {self.name}", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        index, waits = 0, deque(maxlen=3)  # how long the last reads blocked: a stall ends in a timed-out read
        while not self.stopping.is_set():
            started = time.monotonic()
            grabbed = self.capture.grab()
            waits.append(time.monotonic() - started)
            if not grabbed:
                break
            if index % self.vid_stride == 0:
                ok, image = self.capture.retrieve()
                if ok:
                    with self.condition:
                        self.newest = (index, image)
                        self.condition.notify_all()
            index += 1
        with self.condition:
            if not self.stopping.is_set() and not 0 < self.frame_count <= index:
                if max(waits, default=0) >= 0.9 * self.timeout:
                    self.error = f"no frame for {self.timeout:g} s after {index} frames: the stream stopped sending"
                else:
                    warn(f"{self.name}: the stream closed after {index} frames")
            self.ended = True
            self.condition.notify_all()
        self.capture.release()

    def latest(self) -> Optional[tuple[int, np.ndarray]]:
        """(frame index, BGR image) of the newest frame not returned yet; None once the stream has ended.
        Raises StreamError when no new frame arrives within the timeout (plus a grace second)."""
        deadline = time.monotonic() + self.timeout + 1
        with self.condition:
            while not (self.newest and self.newest[0] > self.returned) and not self.ended:
                if not self.condition.wait(timeout=max(deadline - time.monotonic(), 0)):
                    self.stop()
                    raise StreamError(f"{self.name}: no frame for {self.timeout:g} s: the stream stopped sending")
            if self.error:
                raise StreamError(f"{self.name}: {self.error}")
            if self.newest is None or self.newest[0] <= self.returned:
                return None
            self.returned = self.newest[0]
            return self.newest

    def stop(self) -> None:
        """Ask the thread to finish (it releases the capture itself, after its current read)."""
        self.stopping.set()


def live_frames(sources: Sequence[Union[str, int]], vid_stride: int = 1, timeout: float = DEFAULT_TIMEOUT
                ) -> Iterator[tuple[str, int, np.ndarray]]:
    """(name, frame index, BGR image) of the newest frame of each stream in turn, until every stream has ended.
    All streams are opened first, so a bad URL fails before any frame is processed."""
    readers = [StreamReader(source, vid_stride, timeout) for source in sources]
    try:
        while readers:
            for reader in list(readers):
                newest = reader.latest()
                if newest is None:
                    readers.remove(reader)
                else:
                    yield (reader.name, *newest)
    finally:
        for reader in readers:
            reader.stop()
