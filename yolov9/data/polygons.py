"""`Polygons`: the outlines of n objects in three flat arrays, several rings (polygons) per object.

Object j owns rings `rows[j]:rows[j + 1]`; ring r owns points `rings[r]:rings[r + 1]`; the object's mask is the
union of its rings (COCO's rule). An object without rings is a plain box. No Python object per label: the scan
cache, forked DataLoader workers and every transform handle all points at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

MIN_RING_POINTS = 3
CENTRE_BITS = 4  # sub-pixel bits of `fill_rings(centres=True)`


def _counts_to_offsets(counts: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(counts))).astype(np.int64)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated aranges [starts[k], starts[k] + counts[k]) (the elements of several segments)."""
    counts = np.asarray(counts, np.int64)
    return np.repeat(np.asarray(starts, np.int64) - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())


@dataclass(frozen=True, eq=False)
class Polygons:
    """Rings of n objects: points (P, 2) float32, rings (R + 1,) point offsets, rows (n + 1,) ring offsets."""

    points: np.ndarray
    rings: np.ndarray
    rows: np.ndarray

    @classmethod
    def empty(cls, n: int = 0) -> "Polygons":
        """n objects without rings."""
        return cls(np.zeros((0, 2), np.float32), np.zeros(1, np.int64), np.zeros(n + 1, np.int64))

    @classmethod
    def from_rings(cls, objects: Sequence[Sequence[np.ndarray]]) -> "Polygons":
        """From a list over objects of lists of (k, 2) rings (rings of fewer than 3 points are dropped)."""
        rings = [np.asarray(r, np.float32).reshape(-1, 2) for obj in objects for r in obj]
        per_object = np.array([len(obj) for obj in objects], np.int64)
        points = np.concatenate(rings) if rings else np.zeros((0, 2), np.float32)
        return cls(points, _counts_to_offsets([len(r) for r in rings]), _counts_to_offsets(per_object)).dropped_small()

    @classmethod
    def concat(cls, parts: Sequence["Polygons"]) -> "Polygons":
        """The objects of all parts, in order."""
        if not parts:
            return cls.empty()
        points = np.concatenate([p.points for p in parts]).astype(np.float32, copy=False)
        rings = _counts_to_offsets(np.concatenate([np.diff(p.rings) for p in parts]))
        rows = _counts_to_offsets(np.concatenate([np.diff(p.rows) for p in parts]))
        return cls(points, rings, rows)

    def __len__(self) -> int:
        return len(self.rows) - 1

    @property
    def ring_counts(self) -> np.ndarray:
        """(n,) rings per object."""
        return np.diff(self.rows)

    @property
    def has_polygon(self) -> np.ndarray:
        """(n,) bool: objects with at least one ring."""
        return self.ring_counts > 0

    @property
    def ring_sizes(self) -> np.ndarray:
        """(R,) points per ring."""
        return np.diff(self.rings)

    def ring_of_point(self) -> np.ndarray:
        """(P,) ring index of every point."""
        return np.repeat(np.arange(len(self.rings) - 1), self.ring_sizes)

    def with_points(self, points: np.ndarray) -> "Polygons":
        """Same rings and objects, moved points (P, 2)."""
        return Polygons(np.asarray(points, np.float32).reshape(-1, 2), self.rings, self.rows)

    def map_points(self, transform: Callable[[np.ndarray], np.ndarray]) -> "Polygons":
        """Apply `transform` ((P, 2) -> (P, 2)) to all points at once."""
        return self.with_points(transform(self.points)) if len(self.points) else self

    def select(self, index: np.ndarray) -> "Polygons":
        """The objects at `index` (indices or a bool mask), in that order."""
        index = np.asarray(index)
        index = np.flatnonzero(index) if index.dtype == bool else index.astype(np.int64)
        ring_counts = self.ring_counts[index]
        ring_index = _ranges(self.rows[:-1][index], ring_counts)
        sizes = self.ring_sizes[ring_index]
        points = self.points[_ranges(self.rings[:-1][ring_index], sizes)]
        return Polygons(points, _counts_to_offsets(sizes), _counts_to_offsets(ring_counts))

    def slice(self, start: int, stop: int) -> "Polygons":
        """Objects start..stop - 1 (a contiguous range: views and shifted offsets, no gather)."""
        r0, r1 = self.rows[start], self.rows[stop]
        p0, p1 = self.rings[r0], self.rings[r1]
        return Polygons(self.points[p0:p1], self.rings[r0:r1 + 1] - p0, self.rows[start:stop + 1] - r0)

    def dropped_small(self) -> "Polygons":
        """Without rings of fewer than 3 points (degenerate after clipping)."""
        keep = self.ring_sizes >= MIN_RING_POINTS
        if keep.all():
            return self
        ring_object = np.repeat(np.arange(len(self)), self.ring_counts)
        return Polygons(self.points[keep[self.ring_of_point()]], _counts_to_offsets(self.ring_sizes[keep]),
                        _counts_to_offsets(np.bincount(ring_object[keep], minlength=len(self))))

    def boxes(self, fallback: np.ndarray) -> np.ndarray:
        """(n, 4) float32 xyxy: the box of each object's points, or `fallback` (n, 4) for objects without rings."""
        out = np.array(fallback, np.float32, copy=True).reshape(-1, 4)
        has = self.rings[self.rows[1:]] > self.rings[self.rows[:-1]]  # objects with points
        if has.any():
            first_point = self.rings[self.rows[:-1][has]]
            out[has, :2] = np.minimum.reduceat(self.points, first_point, axis=0)
            out[has, 2:] = np.maximum.reduceat(self.points, first_point, axis=0)
        return out

    def clip(self, x1: float, y1: float, x2: float, y2: float) -> "Polygons":
        """Every ring cut to the rectangle [x1, x2] x [y1, y2] (Sutherland-Hodgman, all rings at once); rings
        that fall outside are dropped (their object keeps fewer rings, possibly none)."""
        polygons = self
        for axis, bound, sign in ((0, x1, 1.0), (0, x2, -1.0), (1, y1, 1.0), (1, y2, -1.0)):
            polygons = polygons._clip_half_plane(axis, bound, sign)
        return polygons.dropped_small()

    def _clip_half_plane(self, axis: int, bound: float, sign: float) -> "Polygons":
        """Rings cut to the half plane sign * (xy[axis] - bound) >= 0."""
        if not len(self.points):
            return self
        points = self.points.astype(np.float64)
        inside = sign * (points[:, axis] - bound) >= 0
        if inside.all():
            return self
        ring = self.ring_of_point()
        start = self.rings[:-1][ring]
        previous = np.arange(len(points)) - 1
        previous[previous < start] += self.ring_sizes[ring][previous < start]  # the first point closes the ring
        before = points[previous]
        crosses = inside != inside[previous]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (bound - before[:, axis]) / (points[:, axis] - before[:, axis])
        crossing = before + np.where(crosses, t, 0)[:, None] * (points - before)
        crossing[:, axis] = bound
        # each edge (previous -> point) emits its crossing (if any), then its end point (if inside)
        candidates = np.stack((crossing, points), 1).reshape(-1, 2)
        emitted = np.stack((crosses, inside), 1).reshape(-1)
        sizes = np.bincount(np.repeat(ring, 2)[emitted], minlength=len(self.rings) - 1)
        return Polygons(candidates[emitted].astype(np.float32), _counts_to_offsets(sizes), self.rows)

    def ring_list(self) -> list[np.ndarray]:
        """All rings as (k, 2) views."""
        return np.split(self.points, self.rings[1:-1]) if len(self.rings) > 1 else []

    def object_rings(self) -> list[list[np.ndarray]]:
        """For each object the list of its rings (k, 2) (empty for plain boxes)."""
        rings = self.ring_list()
        return [rings[a:b] for a, b in zip(self.rows[:-1], self.rows[1:])]


def fill_rings(canvas: np.ndarray, rings: Sequence[np.ndarray], value: int = 1, centres: bool = False) -> np.ndarray:
    """Fill each ring (continuous pixel coordinates) into `canvas` (uint8 (h, w)) with `value`.

    Default: corners truncated to int32, the official rasteriser of mask targets. `centres`: the pixels whose
    centre lies inside (1/16 px precision), which follows the ring without the truncation's shift (copy-paste).
    One fillPoly per ring: fillPoly given several contours at once fills with the even-odd rule, which would cut
    overlapping rings out of each other instead of joining them.
    """
    shift = CENTRE_BITS if centres else 0
    for ring in rings:
        ring = np.asarray(ring, np.float64).reshape(-1, 1, 2)
        corners = np.round((ring - 0.5) * (1 << shift)) if centres else ring
        cv2.fillPoly(canvas, [corners.astype(np.int32)], color=value, shift=shift)
    return canvas


def merge_rings(rings: Sequence[np.ndarray]) -> np.ndarray:
    """One outline (m, 2) for several rings, for formats with one polygon per object (YOLO txt): every further
    ring is joined to the first at their closest points by a zero-width bridge (out and back), so filling the
    outline gives the union of disjoint rings."""
    base = np.asarray(rings[0], np.float32)
    pieces: list[tuple[int, np.ndarray]] = []
    for ring in rings[1:]:
        ring = np.asarray(ring, np.float32)
        distance = ((base[:, None] - ring[None]) ** 2).sum(-1)
        i, j = np.unravel_index(int(distance.argmin()), distance.shape)
        pieces.append((int(i), np.concatenate((np.roll(ring, -j, 0), ring[j:j + 1], base[i:i + 1]))))
    out, done = [], 0
    for i, piece in sorted(pieces, key=lambda p: p[0]):
        out += [base[done:i + 1], piece]
        done = i + 1
    return np.concatenate(out + [base[done:]])
