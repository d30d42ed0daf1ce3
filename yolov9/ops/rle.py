"""Binary masks as COCO run-length encodings, and mask IoU with COCO's rules, vectorised over masks.

`RunLengths` holds many masks compactly: the runs of set pixels of each mask, pixels indexed in COCO's
column-major order (x * h + y). It is built from bitmaps, from COCO `segmentation` fields (compressed `counts`
strings are decoded here in numpy; polygons and uncompressed RLE go through pycocotools, so they rasterise exactly
as pycocotools scores them) or by concatenation. The IoU of mask pairs is exact integer arithmetic on the runs:
each run of one mask is measured against the other mask's cumulative coverage (one searchsorted), and pairs whose
areas and boxes already bound the IoU below a threshold are skipped.

`encode` / `decode` (bitmaps <-> the RLE dicts of COCO JSON) are pycocotools' own, imported lazily.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import torch

from yolov9.errors import YOLOv9Error

PAIR_RUNS_PER_CHUNK = 4_000_000  # runs measured at once in `pair_iou` (bounds memory)

Segmentation = Union[list, dict]  # COCO: polygons [[x1, y1, ...], ...] or RLE {"size": [h, w], "counts": ...}


def coco_mask_api():
    """pycocotools.mask, or an error saying how to install it."""
    try:
        from pycocotools import mask
    except ImportError:
        raise YOLOv9Error("COCO masks (RLE JSON, polygons) need pycocotools (a dependency of yolov9): "
                          "pip install pycocotools") from None
    return mask


@dataclass(frozen=True, eq=False)
class RunLengths:
    """N binary masks: mask i has the runs offsets[i]:offsets[i + 1] of set pixels [starts, ends) (column-major
    pixel index) and the (h, w) of sizes[i]."""

    starts: np.ndarray  # (R,) int64
    ends: np.ndarray  # (R,) int64
    offsets: np.ndarray  # (N + 1,) int64
    sizes: np.ndarray  # (N, 2) int64

    def __len__(self) -> int:
        return len(self.sizes)

    @classmethod
    def from_masks(cls, masks: Union[torch.Tensor, np.ndarray]) -> "RunLengths":
        """(N, H, W) binary masks (any dtype, nonzero = set) -> their runs."""
        array = masks.detach().cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
        n, h, w = array.shape
        columns = np.zeros((n, h * w + 1), dtype=bool)  # a clear pixel after each mask: runs stay in their mask
        columns[:, :-1] = (array != 0).transpose(0, 2, 1).reshape(n, h * w)
        edges = np.flatnonzero(np.diff(columns.ravel(), prepend=False))  # alternately first set and first clear
        mask = edges[0::2] // (h * w + 1)
        starts, ends = edges[0::2] - mask * (h * w + 1), edges[1::2] - mask * (h * w + 1)
        sizes = np.tile(np.array([h, w], dtype=np.int64), (n, 1))
        return cls(starts, ends, np.searchsorted(mask, np.arange(n + 1)), sizes)

    @classmethod
    def from_counts(cls, counts: Sequence[Union[str, bytes, Sequence[int]]], sizes: np.ndarray) -> "RunLengths":
        """COCO `counts` (compressed strings or uncompressed lists: alternating clear / set run lengths, clear
        first) of masks of `sizes` (N, 2) (h, w)."""
        sizes = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
        compressed = [isinstance(c, (str, bytes)) for c in counts]
        values, runs = _decode_strings([c for c, is_string in zip(counts, compressed) if is_string])
        if not all(compressed):  # interleave the uncompressed lists
            decoded = iter(np.split(values, np.cumsum(runs)[:-1]))
            per_mask = [next(decoded) if is_string else np.asarray(c, dtype=np.int64).ravel()
                        for c, is_string in zip(counts, compressed)]
            values = np.concatenate(per_mask) if per_mask else values
            runs = np.fromiter(map(len, per_mask), np.int64, len(per_mask))
        return cls._from_run_lengths(values, runs, sizes)

    @classmethod
    def from_coco(cls, segmentations: Sequence[Segmentation], image_sizes: np.ndarray) -> "RunLengths":
        """COCO `segmentation` fields -> runs, as pycocotools reads them: polygons are rasterised by pycocotools
        at their image's (h, w) (`image_sizes` (N, 2)) and merged; RLE carries its own size."""
        image_sizes = np.asarray(image_sizes, dtype=np.int64).reshape(-1, 2)
        counts, sizes = [], np.empty_like(image_sizes)
        for k, (segmentation, (h, w)) in enumerate(zip(segmentations, image_sizes.tolist())):
            if isinstance(segmentation, list):  # polygons of one object
                mask_api = coco_mask_api()
                segmentation = mask_api.merge(mask_api.frPyObjects(segmentation, h, w))
            counts.append(segmentation["counts"])
            sizes[k] = segmentation["size"]
        return cls.from_counts(counts, sizes)

    @classmethod
    def _from_run_lengths(cls, values: np.ndarray, runs: np.ndarray, sizes: np.ndarray) -> "RunLengths":
        """Concatenated run lengths (`runs[i]` of them for mask i, clear first) -> set-pixel runs."""
        if (values < 0).any():
            raise YOLOv9Error("RLE counts must not be negative (malformed mask counts)")
        ends = _segmented_cumsum(values, runs)
        is_set = (_index_in_segment(runs) & 1).astype(bool) & (values > 0)
        offsets = np.concatenate(([0], np.cumsum(is_set)))[np.concatenate(([0], np.cumsum(runs)))]
        return cls(ends[is_set] - values[is_set], ends[is_set], offsets, sizes)

    @classmethod
    def concat(cls, tables: Sequence["RunLengths"]) -> "RunLengths":
        """The masks of all tables, in order."""
        if not tables:
            return cls(*(np.zeros(0, np.int64),) * 2, np.zeros(1, np.int64), np.zeros((0, 2), np.int64))
        shift = np.cumsum([0] + [len(t.starts) for t in tables[:-1]])
        offsets = np.concatenate([[0]] + [t.offsets[1:] + s for t, s in zip(tables, shift)])
        return cls(np.concatenate([t.starts for t in tables]), np.concatenate([t.ends for t in tables]), offsets,
                   np.concatenate([t.sizes for t in tables]))

    def take(self, index: np.ndarray) -> "RunLengths":
        """The masks at `index` (N',), in that order."""
        index = np.asarray(index, dtype=np.int64)
        runs, counts = self.runs_of(index)
        return RunLengths(self.starts[runs], self.ends[runs], np.concatenate(([0], np.cumsum(counts))),
                          self.sizes[index])

    def runs_of(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The run indices of the masks at `index`, concatenated, and how many each mask has."""
        counts = self.run_counts[index]
        return np.repeat(self.offsets[index], counts) + _index_in_segment(counts), counts

    @property
    def run_counts(self) -> np.ndarray:
        """(N,) number of runs per mask."""
        return np.diff(self.offsets)

    @property
    def areas(self) -> np.ndarray:
        """(N,) set pixels per mask (int64)."""
        covered = np.concatenate(([0], np.cumsum(self.ends - self.starts)))
        return covered[self.offsets[1:]] - covered[self.offsets[:-1]]

    @property
    def boxes(self) -> np.ndarray:
        """(N, 4) int64 [x1, y1, x2, y2] of each mask's set pixels (inclusive; (0, 0, -1, -1) when empty)."""
        h = self.sizes[self._mask_of_run(), 0]
        first_col, last_col = self.starts // h, (self.ends - 1) // h
        one_col = first_col == last_col
        top = np.where(one_col, self.starts % h, 0)
        bottom = np.where(one_col, (self.ends - 1) % h, h - 1)
        boxes = np.tile(np.array([0, 0, -1, -1], dtype=np.int64), (len(self), 1))
        filled = np.flatnonzero(self.run_counts)
        first, last = self.offsets[filled], self.offsets[filled + 1] - 1
        boxes[filled] = np.stack((first_col[first], np.minimum.reduceat(top, first),
                                  last_col[last], np.maximum.reduceat(bottom, first)), 1)
        return boxes

    def to_masks(self) -> np.ndarray:
        """(N, H, W) bool bitmaps (all masks must have one size)."""
        if len(np.unique(self.sizes, axis=0)) > 1:
            raise ValueError("to_masks needs masks of one size")
        h, w = self.sizes[0] if len(self) else (0, 0)
        shift = self._mask_of_run() * (h * w)
        edges = np.bincount(self.starts + shift, minlength=len(self) * h * w + 1)
        edges -= np.bincount(self.ends + shift, minlength=len(self) * h * w + 1)
        return (np.cumsum(edges[:-1]) > 0).reshape(len(self), w, h).transpose(0, 2, 1)

    def _mask_of_run(self) -> np.ndarray:
        return np.repeat(np.arange(len(self)), self.run_counts)


def encode(masks: Union[torch.Tensor, np.ndarray]) -> list[dict]:
    """(N, H, W) binary masks -> COCO RLE dicts {"size": [H, W], "counts": str} (pycocotools' encoding, as in
    result JSON files)."""
    array = masks.detach().cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
    rles = coco_mask_api().encode(np.asfortranarray((array != 0).transpose(1, 2, 0).astype(np.uint8)))
    return [{"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")} for rle in rles]


def decode(segmentations: Sequence[Segmentation], height: Optional[int] = None, width: Optional[int] = None
           ) -> np.ndarray:
    """COCO segmentations (compressed or uncompressed RLE; polygons need the image's `height` and `width`) of one
    size -> (N, H, W) bool, through pycocotools."""
    mask_api = coco_mask_api()
    rles = []
    for segmentation in segmentations:
        if isinstance(segmentation, list):
            if height is None or width is None:
                raise ValueError("decoding polygons needs the image's height and width")
            segmentation = mask_api.merge(mask_api.frPyObjects(segmentation, height, width))
        elif isinstance(segmentation.get("counts"), list):
            segmentation = mask_api.frPyObjects(segmentation, *segmentation["size"])
        rles.append(segmentation)
    if not rles:
        return np.zeros((0, height or 0, width or 0), dtype=bool)
    return mask_api.decode(rles).transpose(2, 0, 1).astype(bool)


def pair_iou(dt: RunLengths, dt_index: np.ndarray, gt: RunLengths, gt_index: np.ndarray,
             crowd: Optional[np.ndarray] = None, min_iou: float = 0.0) -> np.ndarray:
    """IoU of the mask pairs (dt[dt_index[p]], gt[gt_index[p]]): (P,) float64, COCO's rules.

    A crowd ground truth divides the intersection by the detection's area; masks of different sizes give -1
    (pycocotools: -1 when their boxes overlap, else 0; neither ever matches). Pairs whose IoU provably lies
    below `min_iou` (from their areas and boxes) give 0 without being measured.
    """
    dt_index, gt_index = np.asarray(dt_index, np.int64), np.asarray(gt_index, np.int64)
    crowd = np.zeros(len(gt_index), bool) if crowd is None else np.asarray(crowd, bool)
    dt_area, gt_area = dt.areas[dt_index], gt.areas[gt_index]
    dt_box, gt_box = dt.boxes[dt_index], gt.boxes[gt_index]
    overlap_w = np.minimum(dt_box[:, 2], gt_box[:, 2]) - np.maximum(dt_box[:, 0], gt_box[:, 0]) + 1
    overlap_h = np.minimum(dt_box[:, 3], gt_box[:, 3]) - np.maximum(dt_box[:, 1], gt_box[:, 1]) + 1
    bound = np.minimum(np.minimum(dt_area, gt_area), np.clip(overlap_w, 0, None) * np.clip(overlap_h, 0, None))
    same_size = (dt.sizes[dt_index] == gt.sizes[gt_index]).all(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        best = bound / np.where(crowd, dt_area, dt_area + gt_area - bound)
    measured = np.flatnonzero(same_size & (bound > 0) & (best >= min_iou * (1 - 1e-12)))
    both = RunLengths.concat([dt, gt])
    first, second = dt_index[measured], gt_index[measured] + len(dt)
    fewer_runs_first = both.run_counts[first] <= both.run_counts[second]
    inter = np.zeros(len(dt_index), dtype=np.int64)
    inter[measured] = _intersections(both, np.where(fewer_runs_first, first, second),
                                     np.where(fewer_runs_first, second, first))
    union = np.where(crowd, dt_area, dt_area + gt_area - inter)
    iou = np.divide(inter, union, out=np.zeros(len(inter)), where=inter > 0)
    return np.where(same_size, iou, -1.0)


def mask_iou(dt: RunLengths, gt: RunLengths, crowd: Optional[np.ndarray] = None) -> np.ndarray:
    """(D, G) IoU of every detection with every ground truth (pycocotools.mask.iou)."""
    d, g = np.meshgrid(np.arange(len(dt)), np.arange(len(gt)), indexing="ij")
    crowd = np.zeros(len(gt), bool) if crowd is None else np.asarray(crowd, bool)
    return pair_iou(dt, d.ravel(), gt, g.ravel(), crowd[g.ravel()]).reshape(len(dt), len(gt))


def _intersections(table: RunLengths, queries: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(P,) set pixels shared by masks queries[p] and targets[p] of `table`: every run of the query mask is
    measured against the target's coverage, chunk by chunk."""
    counts = table.run_counts[queries]
    coverage = _Coverage(table)
    inter = np.zeros(len(queries), dtype=np.int64)
    bounds = np.searchsorted(np.cumsum(counts), np.arange(PAIR_RUNS_PER_CHUNK, counts.sum(), PAIR_RUNS_PER_CHUNK))
    for pairs in np.split(np.arange(len(queries)), bounds):
        if not len(pairs):
            continue
        run, n = table.runs_of(queries[pairs])
        pair = np.repeat(np.arange(len(pairs)), n)
        target = targets[pairs][pair]
        shared = coverage.before(target, table.ends[run]) - coverage.before(target, table.starts[run])
        inter[pairs] = np.bincount(pair, shared, minlength=len(pairs))
    return inter


class _Coverage:
    """How many set pixels of a mask of `table` lie before a pixel index: one searchsorted over all runs."""

    def __init__(self, table: RunLengths):
        self.table = table
        self.span = int(table.sizes.prod(1).max(initial=0)) + 1
        self.keys = np.repeat(np.arange(len(table)), table.run_counts) * self.span + table.starts  # sorted
        self.covered = np.concatenate(([0], np.cumsum(table.ends - table.starts)))  # set pixels before each run

    def before(self, mask: np.ndarray, x: np.ndarray) -> np.ndarray:
        """(n,) set pixels of masks `mask` with an index below `x`."""
        t = self.table
        k = np.searchsorted(self.keys, mask * self.span + x, side="right") - 1  # the last run starting at <= x
        first = t.offsets[mask]
        k_safe = np.maximum(k, 0)
        value = self.covered[k_safe] - self.covered[first] + np.minimum(x - t.starts[k_safe],
                                                                        t.ends[k_safe] - t.starts[k_safe])
        return np.where(k >= first, value, 0)


def _decode_strings(strings: Sequence[Union[str, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    """COCO compressed counts strings -> (all run lengths concatenated, (S,) run lengths per string).

    Each value is 5-bit groups (char - 48), least significant first, 0x20 = more groups follow, 0x10 in the last
    group = negative; from the fourth value on, each is stored as the difference to the value two before.
    """
    raw = [s.encode("ascii") if isinstance(s, str) else bytes(s) for s in strings]
    lengths = np.fromiter(map(len, raw), np.int64, len(raw))
    chars = np.frombuffer(b"".join(raw), dtype=np.uint8) - np.uint8(48)  # invalid characters wrap above 63
    last = np.flatnonzero(chars < 0x20)  # the last group of each value
    string_ends = np.cumsum(lengths)
    first = np.concatenate(([0], last + 1))[:-1]
    width = last - first + 1
    if (chars > 63).any() or (width > 7).any() or (chars[string_ends[lengths > 0] - 1] >= 0x20).any():
        raise YOLOv9Error("malformed RLE counts string (not COCO's compressed encoding)")
    values = (chars[first] & 0x1F).astype(np.int64)
    for k in range(1, int(width.max(initial=0))):  # the few values of more than one group
        longer = np.flatnonzero(width > k)
        values[longer] |= (chars[first[longer] + k] & 0x1F).astype(np.int64) << (5 * k)
    negative = np.flatnonzero(chars[last] & 0x10)
    values[negative] -= np.int64(1) << (5 * width[negative])
    per_string = np.diff(np.searchsorted(last, string_ends), prepend=0)
    return _undo_differences(values, per_string), per_string


def _undo_differences(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Within each segment, value m >= 3 is stored minus value m - 2: running sums over the values of one parity
    (value 0 alone, values 2, 4, ... and values 1, 3, ...), taken over every other element of the whole array."""
    first = np.cumsum(sizes) - sizes
    chained = values.copy()
    chained[first[sizes > 0]] = 0  # value 0 is not part of the chain of 2, 4, ...
    for parity in (0, 1):  # global parity = parity within a segment, shifted by the segment's start
        length = (first + sizes + 1 - parity) // 2 - (first + 1 - parity) // 2  # its elements of this parity
        chained[parity::2] = _segmented_cumsum(chained[parity::2], length)
    chained[first[sizes > 0]] = values[first[sizes > 0]]
    return chained


def _index_in_segment(sizes: np.ndarray) -> np.ndarray:
    """0, 1, ... within each segment of `sizes` (consecutive lengths)."""
    return np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)


def _segmented_cumsum(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Cumulative sums restarting at each segment of `sizes` (consecutive lengths summing to len(values))."""
    starts = (np.cumsum(sizes) - sizes)[sizes > 0]
    total_before = np.concatenate(([0], np.cumsum(values)))[starts]
    corrected = values.copy()
    corrected[starts] -= np.diff(total_before, prepend=0)  # each segment's sum starts afresh
    return np.cumsum(corrected)
