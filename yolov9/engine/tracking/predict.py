"""Tracking on top of prediction: a predictor callback gives each sequence its own tracker, turns every frame's
detections into tracked boxes (ids in `Results.boxes.id`, trails in `Results.trails`) before anything is saved,
and writes MOT-challenge files.

A sequence is a video file, a stream or a webcam (its frames, in order), or the images of one folder (a folder
of frames, as MOT benchmarks ship them, in file-name order). A video that starts again at frame 0 starts a new
tracker.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Union

from yolov9.callbacks import Callbacks
from yolov9.engine.predictor import stream
from yolov9.engine.sources import video_fps
from yolov9.engine.tracking.byte_tracker import ByteTracker, ByteTrackOptions
from yolov9.engine.tracking.mot import MotWriter
from yolov9.engine.tracking.trails import Trails
from yolov9.errors import YOLOv9Error
from yolov9.tasks import Boxes, Results

TRACKERS = {"bytetrack": ByteTracker}
TRACK_CONF = 0.1  # predictor threshold when tracking: ByteTrack's second round needs the low-confidence boxes


@dataclass
class TrackedSequence:
    """One video's (or image folder's) tracker, trails and frame counter."""

    name: str
    tracker: Any
    trails: Trails
    frames: int = 0


class TrackingCallback:
    """on_predict_batch_end: replaces each result's boxes by its tracked boxes (with ids) and adds trails;
    writes `<mot_dir>/<sequence>.txt` when `mot_dir` is set."""

    def __init__(self, tracker: str = "bytetrack", options: Optional[ByteTrackOptions] = None, trail: int = 30,
                 mot_dir: Optional[Path] = None):
        if tracker not in TRACKERS:
            raise YOLOv9Error(f"unknown tracker {tracker!r}; known: {', '.join(TRACKERS)}")
        self.make_tracker = TRACKERS[tracker]
        self.options = options or ByteTrackOptions()
        self.make_tracker(self.options)  # fails here, before any frame is read, when `lap` is missing
        self.trail = trail
        self.mot = MotWriter(mot_dir) if mot_dir is not None else None
        self.sequences: dict[str, TrackedSequence] = {}

    def _sequence(self, result: Results) -> TrackedSequence:
        key = result.path if result.frame is not None else str(Path(result.path).parent)
        known = self.sequences.get(key)
        if known is None or result.frame == 0:
            fps = video_fps(key) if result.frame is not None and Path(key).is_file() else 30.0
            known = self.sequences[key] = TrackedSequence(Path(key).stem or "sequence",
                                                          self.make_tracker(self.options, fps), Trails(self.trail))
        return known

    def on_predict_batch_end(self, predictor: Any) -> None:
        for result in predictor.results:
            started = time.perf_counter()
            sequence = self._sequence(result)
            sequence.frames += 1
            tracked, rows = sequence.tracker.update(result.boxes.data)
            result.boxes = Boxes(tracked, result.orig_shape)
            result.masks = None if result.masks is None else result.masks[rows]
            result.trails = sequence.trails.update(tracked[:, :4], tracked[:, 6])
            if self.mot is not None:
                frame = sequence.frames if result.frame is None else result.frame + 1
                self.mot.write(sequence.name, frame, tracked)
            result.speed = {**result.speed, "track": 1000 * (time.perf_counter() - started)}

    def on_predict_end(self, predictor: Any) -> None:
        if self.mot is not None:
            self.mot.close()


def track_stream(model, source, tracker: str = "bytetrack", tracker_options: Optional[ByteTrackOptions] = None,
                 trail: int = 30, save_mot: bool = True, save_dir: Optional[Union[str, Path]] = None,
                 callbacks: Optional[Callbacks] = None, conf: float = TRACK_CONF, **options: Any
                 ) -> Iterator[Results]:
    """Like `yolov9.engine.predictor.stream`, with each result's boxes tracked: `boxes.id` (n,) track ids,
    `trails`, annotated videos with ids and trails, and (with `save_dir` and `save_mot`) MOT files in
    `save_dir/mot/`. The user's `callbacks` run after tracking, so they see the ids."""
    tracking = TrackingCallback(tracker, tracker_options, trail,
                                Path(save_dir) / "mot" if save_dir is not None and save_mot else None)
    events = Callbacks()
    events.add_object(tracking)
    for event, functions in (callbacks.handlers if callbacks else {}).items():
        for fn in functions:
            events.add(event, fn)
    try:
        yield from stream(model, source, conf=conf, save_dir=save_dir, callbacks=events, **options)
    finally:
        tracking.on_predict_end(None)


def track(model, source, **options: Any) -> list[Results]:
    """Track objects in videos, streams or image folders; one Results per frame, `boxes.id` holding the track
    ids. See `track_stream` for the options (and `stream` for the prediction ones)."""
    return list(track_stream(model, source, **options))
