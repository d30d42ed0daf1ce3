"""Recent centre points of each track, for drawing the path an object took."""
from __future__ import annotations

import numpy as np


class Trails:
    """Track id -> its last `length` box centres, held as one array; an id unseen for `length` frames is forgotten."""

    def __init__(self, length: int = 30):
        self.length = length
        self.frame = 0
        self.ids = np.zeros(0, np.int64)
        self.points = np.zeros((0, length, 2), np.float32)  # per id, the newest point last
        self.count = np.zeros(0, np.int64)
        self.last_seen = np.zeros(0, np.int64)

    def update(self, boxes: np.ndarray, ids: np.ndarray) -> list[np.ndarray]:
        """This frame's tracked (n, 4) xyxy boxes and their (n,) ids -> per box its trail (k, 2) float32 xy,
        oldest first, ending at the box's centre (k <= `length`)."""
        self.frame += 1
        ids = np.asarray(ids, np.int64)
        new = np.setdiff1d(ids, self.ids)
        self.ids = np.concatenate((self.ids, new))
        self.points = np.concatenate((self.points, np.zeros((len(new), self.length, 2), np.float32)))
        self.count = np.concatenate((self.count, np.zeros(len(new), np.int64)))
        self.last_seen = np.concatenate((self.last_seen, np.zeros(len(new), np.int64)))
        order = np.argsort(self.ids)
        rows = order[np.searchsorted(self.ids, ids, sorter=order)]
        self.points[rows] = np.roll(self.points[rows], -1, axis=1)
        self.points[rows, -1] = (boxes[:, :2] + boxes[:, 2:4]) / 2
        self.count[rows] = np.minimum(self.count[rows] + 1, self.length)
        self.last_seen[rows] = self.frame
        trails = [self.points[row, self.length - count:] for row, count in zip(rows, self.count[rows])]
        keep = self.frame - self.last_seen < self.length
        self.ids, self.points, self.count, self.last_seen = (a[keep] for a in
                                                             (self.ids, self.points, self.count, self.last_seen))
        return trails
