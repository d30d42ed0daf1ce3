"""ByteTrack (Zhang et al., ECCV 2022): associate every detection box, the low-confidence ones too.

Per frame, all tracks are moved by a constant-velocity Kalman filter (`kalman`), then matched one-to-one
(`matching.assign`) in three rounds:

1. confirmed tracks (seen last frame or lost for a while) x confident detections (conf >= `high_conf`), on IoU
   (times the detection's confidence with `fuse_score`);
2. confirmed tracks still unmatched and seen last frame x the low-confidence detections (`low_conf` <= conf <
   `high_conf`), on IoU: occluded or blurred objects keep their track instead of starting a new one;
3. tentative tracks (younger than `confirm_frames`) x the confident detections left.

A confident detection left over (conf >= `new_track_conf`) starts a track. A track gets its id when it is
confirmed: at once with `confirm_frames` 1 (so every object is tracked from its first frame), after that many
consecutive matches otherwise (the paper's rule is 2: fewer one-frame false tracks, one frame later). A
confirmed track not matched is lost and is dropped after `lost_frames` frames (at 30 fps, scaled to the video).
The state of all tracks is held in arrays; nothing loops over tracks or boxes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import yolov9.engine.tracking.kalman as kalman
from yolov9.engine.tracking.matching import assign, iou_matrix, require_lap


@dataclass(frozen=True)
class ByteTrackOptions:
    """The tracker's thresholds. Defaults suit YOLO class scores (the predictor's confidence), whose confident
    range starts near `detect`'s default --conf 0.25; the paper used 0.5 / 0.6 with YOLOX's scores."""

    high_conf: float = 0.25        # detections at least this confident take part in rounds 1 and 3
    low_conf: float = 0.1          # detections below are ignored
    new_track_conf: float = 0.25   # an unmatched detection starts a track from this confidence
    match_iou: float = 0.2         # round 1: minimum (score-fused) IoU of a match (the paper's 1 - 0.8)
    low_match_iou: float = 0.5     # round 2
    tentative_match_iou: float = 0.3  # round 3
    fuse_score: bool = True        # rounds 1 and 3 rank matches by IoU x confidence
    confirm_frames: int = 1        # consecutive matches before a new track gets an id and is reported
    lost_frames: int = 30          # frames (at 30 fps) a lost track may be found again


class ByteTracker:
    """Online multi-object tracker for one video: `update(detections)` once per frame, in order."""

    def __init__(self, options: ByteTrackOptions = ByteTrackOptions(), frame_rate: float = 30.0):
        require_lap()
        self.options = options
        self.max_lost = max(1, round(options.lost_frames * frame_rate / 30))
        self.frame = 0
        self.next_id = 1
        self.mean = np.zeros((0, 8))
        self.covariance = np.zeros((0, 8, 8))
        self.ids = np.zeros(0, np.int64)        # 0 while tentative
        self.hits = np.zeros(0, np.int64)       # consecutive matches (counts while tentative)
        self.last_seen = np.zeros(0, np.int64)  # frame of the last match
        self.lost = np.zeros(0, bool)

    def __len__(self) -> int:
        """Tracks alive (tracked, lost or tentative)."""
        return len(self.ids)

    def update(self, detections: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One frame's detections (n, 6+) [x1, y1, x2, y2, conf, cls, ...] -> the tracked ones (m, 7)
        [x1, y1, x2, y2, conf, cls, id] and their (m,) row indices in `detections`, in detection order: every
        confirmed track matched in this frame, with its detection's box."""
        self.frame += 1
        detections = np.asarray(detections, np.float64)[:, :6]
        usable = np.flatnonzero(detections[:, 4] >= self.options.low_conf)
        detections = detections[usable]
        self._predict()
        matched, unclaimed = self._associate(detections)  # per track: the index of its detection (-1: none)
        hit = matched >= 0
        if hit.any():
            self.mean[hit], self.covariance[hit] = kalman.update(self.mean[hit], self.covariance[hit],
                                                                 detections[matched[hit], :4])
        self.hits = np.where(hit, self.hits + 1, 0)
        self.last_seen[hit] = self.frame
        self.lost = ~hit & (self.ids > 0)
        matched = np.concatenate((matched, self._start_tracks(detections, unclaimed)))
        self._confirm()
        reported = np.flatnonzero((self.ids > 0) & (matched >= 0))
        reported = reported[np.argsort(matched[reported], kind="stable")]
        rows = matched[reported]
        tracked = np.concatenate((detections[rows], self.ids[reported, None]), 1).astype(np.float32)
        self._drop_dead()
        return tracked, usable[rows]

    def _predict(self) -> None:
        if not len(self.ids):
            return
        self.mean[self.lost, 7] = 0  # a lost box keeps its size
        self.mean, self.covariance = kalman.predict(self.mean, self.covariance)

    def _associate(self, detections: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The three rounds of the module docstring -> per track its detection index or -1, and the indices of
        the confident detections no track claimed."""
        o = self.options
        matched = np.full(len(self.ids), -1, np.int64)
        boxes = kalman.state_to_xyxy(self.mean)
        confident = np.flatnonzero(detections[:, 4] >= o.high_conf)
        weak = np.flatnonzero(detections[:, 4] < o.high_conf)
        confirmed = np.flatnonzero(self.ids > 0)

        def match(tracks: np.ndarray, candidates: np.ndarray, min_iou: float, fuse: bool) -> tuple:
            similarity = iou_matrix(boxes[tracks], detections[candidates, :4])
            if fuse:
                similarity = similarity * detections[candidates, 4][None]
            pairs, left_tracks, left_candidates = assign(1 - similarity, 1 - min_iou)
            matched[tracks[pairs[:, 0]]] = candidates[pairs[:, 1]]
            return tracks[left_tracks], candidates[left_candidates]

        left, confident = match(confirmed, confident, o.match_iou, o.fuse_score)
        match(left[~self.lost[left]], weak, o.low_match_iou, False)
        _, unclaimed = match(np.flatnonzero(self.ids == 0), confident, o.tentative_match_iou, o.fuse_score)
        return matched, unclaimed

    def _start_tracks(self, detections: np.ndarray, unclaimed: np.ndarray) -> np.ndarray:
        """New tentative tracks from the confident detections nobody claimed -> their detection indices."""
        new = unclaimed[detections[unclaimed, 4] >= self.options.new_track_conf]
        mean, covariance = kalman.initiate(detections[new, :4])
        self.mean = np.concatenate((self.mean, mean))
        self.covariance = np.concatenate((self.covariance, covariance))
        self.ids = np.concatenate((self.ids, np.zeros(len(new), np.int64)))
        self.hits = np.concatenate((self.hits, np.ones(len(new), np.int64)))
        self.last_seen = np.concatenate((self.last_seen, np.full(len(new), self.frame)))
        self.lost = np.concatenate((self.lost, np.zeros(len(new), bool)))
        return new

    def _confirm(self) -> None:
        ready = np.flatnonzero((self.ids == 0) & (self.hits >= self.options.confirm_frames))
        self.ids[ready] = self.next_id + np.arange(len(ready))
        self.next_id += len(ready)

    def _drop_dead(self) -> None:
        """Forget tentative tracks that missed a frame and lost tracks unseen for longer than `max_lost`."""
        missed = self.frame - self.last_seen
        keep = np.where(self.ids > 0, missed <= self.max_lost, missed == 0)
        for name in ("mean", "covariance", "ids", "hits", "last_seen", "lost"):
            setattr(self, name, getattr(self, name)[keep])
