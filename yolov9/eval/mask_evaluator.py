"""Instance-mask evaluation at the ORIGINAL image resolution, COCO's way, and the masks of one image's prediction.

Rule: every predicted mask is decoded at the network input (prototypes upsampled bilinearly, then cropped to the
detection's box: the official save-json path, `process_mask_upsample`), mapped to the original image
(`masks_to_original`, the official `scale_image`) and run-length encoded (`evaluation_masks`: the same pixels,
computed in each box's window); the ground truth is the image's label
polygons in original pixels, rasterised by COCO's own polygon rasteriser (pycocotools `frPyObjects`, as it scores
a COCO annotation file; a row without a polygon is its filled box). One COCO matching on mask IoU
(`evaluate_arrays` on `RunLengths`) gives AP and the P / R of the same true positives, so that mask mAP equals
pycocotools `segm` on the written predictions.json against a ground-truth json of the same polygons.

Difference to the official `segment/val.py` table: it scores masks at PROTOTYPE resolution (H/4 x W/4 of the
letterboxed input, ground truth resized bilinearly to it and thresholded, padding included) and only its
`--save-json` pycocotools run uses the original resolution; here the table itself is the original-resolution
number (the one COCO reports), so it can differ from the official table by a few tenths of a point.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from yolov9.eval.box_evaluator import ground_truth, image_rank, matching_metrics
from yolov9.eval.coco import evaluate_arrays
from yolov9.eval.coco_results import detection_rows, image_id
from yolov9.eval.evaluator import Evaluator
from yolov9.ops.letterbox import Letterbox
from yolov9.ops.masks import crop_mask, mask_probabilities, masks_to_original, process_mask
from yolov9.ops.rle import RunLengths, coco_mask_api

MASK_STRIDE = 4  # prototypes are at 1/4 of the network input (P3/8 upsampled x2) in every segmentation head
MASK_MODES = ("upsample", "native")
MASKS_PER_CHUNK = 64  # masks decoded at once (bounds memory: 300 detections x 640 x 640 floats would be 0.5 GB)
WINDOW_PIXELS_PER_CHUNK = 1 << 22  # evaluation masks: window pixels decoded at once
RESIZE_COEF_SCALE = 2048  # OpenCV's INTER_RESIZE_COEF_SCALE: 11-bit interpolation weights


@dataclass(frozen=True)
class SegmentPrediction:
    """One image's segmentation output in letterboxed pixels: detections (n, 6 + nm) [x1, y1, x2, y2, conf, cls,
    mask coefficients] and the prototypes (nm, H/4, W/4) of the batch input (H, W)."""

    detections: torch.Tensor
    prototypes: torch.Tensor

    def __len__(self) -> int:
        return len(self.detections)

    @property
    def input_shape(self) -> tuple[int, int]:
        """(H, W) of the network input the prototypes belong to."""
        return self.prototypes.shape[1] * MASK_STRIDE, self.prototypes.shape[2] * MASK_STRIDE

    @property
    def coefficients(self) -> torch.Tensor:
        """(n, nm) mask coefficients."""
        return self.detections[:, 6:6 + self.prototypes.shape[0]].float()


def original_masks(prediction: SegmentPrediction, letterbox: Letterbox, mode: str = "upsample") -> torch.Tensor:
    """The prediction's masks on the original image of `letterbox.shape`: (n, h, w) bool, one per detection.

    mode "upsample": cropped at prototype resolution, upsampled to the input (official predict), then mapped to
    the original image like `masks_to_original`; "native": the prototypes' part inside the letterbox upsampled
    straight to the original size and cropped to the box there (official --retina-masks).
    """
    if mode not in MASK_MODES:
        raise ValueError(f"mask mode must be one of {MASK_MODES}, not {mode!r}")
    if not len(prediction):
        return torch.zeros((0, *letterbox.shape), dtype=torch.bool)
    boxes, coefficients = prediction.detections[:, :4].float(), prediction.coefficients
    parts = []
    for rows in torch.arange(len(boxes)).split(MASKS_PER_CHUNK):
        if mode == "native":
            parts.append(native_masks(prediction.prototypes, coefficients[rows],
                                      letterbox.boxes_to_original(boxes[rows]), letterbox))
        else:
            masks = process_mask(prediction.prototypes, coefficients[rows], boxes[rows], prediction.input_shape,
                                 upsample=True)
            parts.append(masks_to_original(masks[:, :letterbox.canvas[0], :letterbox.canvas[1]], letterbox))
    return torch.cat(parts).cpu()


def native_masks(protos: torch.Tensor, coefficients: torch.Tensor, boxes: torch.Tensor, letterbox: Letterbox
                 ) -> torch.Tensor:
    """Masks at the original resolution: protos (nm, h, w), coefficients (n, nm), boxes (n, 4) xyxy ORIGINAL
    pixels -> (n, H0, W0) bool. The letterbox's image area at prototype resolution (edges truncated to whole
    prototype pixels, as officially) is upsampled bilinearly to the original size and cropped to the boxes."""
    probabilities = mask_probabilities(protos, coefficients)
    (left, top), (h, w) = letterbox.pad, letterbox.resized
    inside = probabilities[:, int(top / MASK_STRIDE):int((top + h) / MASK_STRIDE),
                           int(left / MASK_STRIDE):int((left + w) / MASK_STRIDE)]
    resized = F.interpolate(inside[None], size=letterbox.shape, mode="bilinear", align_corners=False)[0]
    return crop_mask(resized, boxes.float()) > 0.5


def evaluation_masks(prediction: SegmentPrediction, letterbox: Letterbox) -> RunLengths:
    """The masks COCO scores, on the original image, as run lengths: official val --save-json's (prototypes
    upsampled bilinearly to the input, cropped to the box, > 0.5, then the letterbox's image area resized
    INTER_LINEAR to the original size: `process_mask_upsample` + `masks_to_original`).

    Computed in each mask's own window (its box, on the input and on the original image) instead of on whole
    images, so the cost follows the boxes' areas, not detections x image size (300 boxes of ~130 x 130 px on a
    640 x 480 image: 0.8 s instead of 2-3 s on 2 CPU cores). The input step samples like F.interpolate; the original-size step repeats
    OpenCV's 8-bit INTER_LINEAR resize in integers (11-bit coefficients, its vectorised rounding), which gives
    `masks_to_original`'s pixels exactly.
    """
    n, shape = len(prediction), letterbox.shape
    if not n:
        return RunLengths.from_masks(np.zeros((0, *shape), bool))
    boxes = prediction.detections[:, :4].double().cpu()
    probabilities = mask_probabilities(prediction.prototypes, prediction.coefficients).cpu()
    (left, top), (rh, rw) = letterbox.pad, letterbox.resized
    inside = torch.tensor([left, top, left + rw, top + rh], dtype=torch.float64)
    window = torch.minimum(torch.maximum(boxes.ceil(), inside[:2].repeat(2)), inside[2:].repeat(2))  # on the input
    cost = ((window[:, 2:] - window[:, :2] + 2).prod(1) * max(1.0, shape[0] * shape[1] / (rh * rw))).numpy()
    order = np.argsort(cost, kind="stable")  # chunks of similar window sizes, within a pixel budget
    taps = _resize_taps(letterbox)
    tables, first = [], 0
    while first < n:
        counts = np.arange(1, min(MASKS_PER_CHUNK, n - first) + 1)
        fits = counts * cost[order[first:first + len(counts)]] <= WINDOW_PIXELS_PER_CHUNK
        rows = torch.from_numpy(order[first:first + max(int(fits.sum()), 1)])
        input_masks = _sample_input_window(probabilities[rows], boxes[rows], window[rows], prediction.input_shape)
        if tuple(letterbox.resized) == tuple(shape):  # unscaled: OpenCV's resize copies, the window only moves
            placed = (window[rows, :2] - inside[:2]).long(), input_masks
        else:
            placed = _resize_window(input_masks, window[rows], letterbox, taps)
        tables.append(_window_runs(*placed, shape))
        first += len(rows)
    return RunLengths.concat(tables).take(np.argsort(order))


def _sample_input_window(probabilities: torch.Tensor, boxes: torch.Tensor, window: torch.Tensor,
                         input_shape: tuple[int, int]) -> torch.Tensor:
    """(n, h, w) prototype-resolution probabilities -> (n, WH, WW) bool on the input, in each window (x1, y1, x2,
    y2 whole input pixels): bilinear as F.interpolate (align_corners=False, source clamped at 0), one axis at a
    time, then the crop to the box and > 0.5."""
    values = probabilities.float()
    kept = []
    for coordinate, dim in ((0, 2), (1, 1)):  # x (along dim 2), then y (along dim 1)
        count = int((window[:, coordinate + 2] - window[:, coordinate]).max().clamp(min=1))
        pixels = window[:, coordinate:coordinate + 1] + torch.arange(count, dtype=torch.float64)  # (n, count)
        size = values.shape[dim]
        scale = np.float32(size / input_shape[1 - coordinate])
        source = (scale * (pixels.float() + 0.5) - 0.5).clamp(min=0)
        first = source.long().clamp(max=size - 1)  # past a window's end (a wider window's count): masked below
        second = first + (first < size - 1)
        weight = (source - first).unsqueeze(3 - dim)
        values = (1 - weight) * _take(values, first, dim) + weight * _take(values, second, dim)
        kept.append((pixels >= boxes[:, coordinate:coordinate + 1]) & (pixels < boxes[:, coordinate + 2:coordinate + 3])
                    & (pixels < window[:, coordinate + 2:coordinate + 3]))
    keep_x, keep_y = kept
    return (values > 0.5) & keep_y[:, :, None] & keep_x[:, None, :]


def _resize_taps(letterbox: Letterbox) -> list[tuple[torch.Tensor, ...]]:
    """Per axis (x, y) of the original image, OpenCV's INTER_LINEAR taps into the letterbox's image area:
    (first source pixel, second source pixel, their 11-bit weights), each (size,). As cv::resize: the source
    position (d + 0.5) * scale - 0.5 in float32; along x a position outside the image takes its edge pixel only,
    along y both rows are clamped and keep their weights."""
    taps = []
    for axis, (size, source) in enumerate(((letterbox.shape[1], letterbox.resized[1]),
                                           (letterbox.shape[0], letterbox.resized[0]))):
        position = ((np.arange(size) + 0.5) * (source / size) - 0.5).astype(np.float32)
        first = np.floor(position).astype(np.int64)
        fraction = position - first
        if axis == 0:
            fraction = np.where((first < 0) | (first >= source - 1), np.float32(0), fraction)
            first = first.clip(0, source - 1)
        second = (first + 1).clip(0, source - 1)
        weights = [np.rint(w * RESIZE_COEF_SCALE).astype(np.int32) for w in (1 - fraction, fraction)]
        taps.append(tuple(torch.from_numpy(a) for a in (first.clip(0, source - 1), second, *weights)))
    return taps


def _resize_window(input_masks: torch.Tensor, window: torch.Tensor, letterbox: Letterbox,
                   taps: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of input masks (n, WH, WW) at `window` origins -> (origins (n, 2) x, y, masks (n, OH, OW) bool)
    on the original image, as cv::resize INTER_LINEAR of 0/1 bytes then > 0 (see `_resize_taps`)."""
    (left, top), (rh, rw) = letterbox.pad, letterbox.resized
    limit = torch.tensor([letterbox.shape[1], letterbox.shape[0]], dtype=torch.float64)
    scale = limit / torch.tensor([rw, rh], dtype=torch.float64)  # original pixels per input pixel
    offset = torch.tensor([left, top], dtype=torch.float64)
    low = ((window[:, :2] - offset - 1) * scale).floor().clamp(min=0)
    high = torch.minimum(((window[:, 2:] - offset + 1) * scale).ceil() + 1, limit)
    high = torch.where(window[:, 2:] > window[:, :2], high, low)  # an empty window stays empty
    n, wh, ww = input_masks.shape
    values = F.pad(input_masks.to(torch.int32), (0, 1, 0, 1))  # index ww / wh: outside the window, 0
    keep = []
    for axis, (first, second, weight_first, weight_second) in enumerate(taps):
        size = int((high[:, axis] - low[:, axis]).max().clamp(min=1))
        index = low[:, axis:axis + 1].long() + torch.arange(size)  # (n, size) original pixels
        keep.append(index < high[:, axis:axis + 1])
        index = index.clamp(max=len(first) - 1)
        shift = (offset[axis] - window[:, axis:axis + 1]).long()  # letterbox image area -> window
        span = values.shape[2 - axis] - 1
        taps_a, taps_b = (torch.where((i >= 0) & (i < span), i, span) for i in (first[index] + shift,
                                                                                   second[index] + shift))
        if axis == 0:  # horizontal pass: 11-bit fixed point per window row
            values = (_take(values, taps_a, 2) * weight_first[index][:, None, :]
                      + _take(values, taps_b, 2) * weight_second[index][:, None, :])
        else:  # vertical pass with OpenCV's vectorised rounding
            top_rows = ((_take(values, taps_a, 1) >> 4) * weight_first[index][:, :, None]) >> 16
            bottom_rows = ((_take(values, taps_b, 1) >> 4) * weight_second[index][:, :, None]) >> 16
            values = (top_rows + bottom_rows + 2) >> 2
    keep_x, keep_y = keep
    return low.long(), (values > 0) & keep_y[:, :, None] & keep_x[:, None, :]


def _take(values: torch.Tensor, index: torch.Tensor, dim: int) -> torch.Tensor:
    """Per mask, rows (dim 1) or columns (dim 2) by number: values (n, R, C), index (n, K) -> (n, K, C) or
    (n, R, K). Whole rows are copied by one `index_select` (columns through the transpose): several times faster
    than an element-wise gather with an index expanded to the output's size."""
    if dim == 2:
        return _take(values.transpose(1, 2), index, 1).transpose(1, 2)
    n, rows, columns = values.shape
    flat = (index + torch.arange(n, device=index.device).unsqueeze(1) * rows).reshape(-1)
    return values.reshape(n * rows, columns).index_select(0, flat).reshape(n, -1, columns)


def _window_runs(origins: torch.Tensor, masks: torch.Tensor, shape: Sequence[int]) -> RunLengths:
    """Masks (n, h, w) bool, each zero outside its window at `origins` (n, 2) (x, y) of an image of `shape`
    -> their runs in COCO's column-major pixel order (adjacent runs merged, as from whole bitmaps)."""
    n, h, w = masks.shape
    image_h, image_w = int(shape[0]), int(shape[1])
    columns = np.zeros((n, w, h + 1), dtype=bool)  # a clear pixel after each window column
    columns[:, :, :h] = masks.numpy().transpose(0, 2, 1)
    edges = np.flatnonzero(np.diff(columns.ravel(), prepend=False))
    first, after = edges[0::2], edges[1::2]
    mask, within = np.divmod(first, w * (h + 1))
    column, row = np.divmod(within, h + 1)
    starts = (origins[mask, 0].numpy() + column) * image_h + origins[mask, 1].numpy() + row
    ends = starts + (after - first)
    joined = np.zeros(len(starts), dtype=bool)  # a run that continues the previous one (across a column)
    joined[1:] = (starts[1:] == ends[:-1]) & (mask[1:] == mask[:-1])
    kept = np.flatnonzero(~joined)
    group_last = np.append(kept[1:] - 1, len(ends) - 1) if len(kept) else kept
    offsets = np.searchsorted(mask[kept], np.arange(n + 1))
    return RunLengths(starts[kept], ends[group_last], offsets, np.tile(np.array([image_h, image_w]), (n, 1)))


def ground_truth_masks(segments: Sequence[Sequence[np.ndarray]], boxes: np.ndarray, shape: Sequence[int]
                       ) -> RunLengths:
    """GT masks of one image: per target row its polygons (k, 2) in original pixels (none: its filled box (4,)
    xyxy from `boxes`), rasterised at the original `shape` (h, w) by pycocotools as COCO does."""
    polygons = [[np.asarray(p, np.float64).ravel().tolist() for p in row if len(p) >= 3] for row in segments]
    x1, y1, x2, y2 = np.asarray(boxes, np.float64).reshape(-1, 4).T
    box_polygons = np.stack((x1, y1, x2, y1, x2, y2, x1, y2), 1).tolist()
    polygons = [row or [box] for row, box in zip(polygons, box_polygons)]
    return RunLengths.from_coco(polygons, np.tile(np.asarray(shape[:2], np.int64), (len(polygons), 1)))


class DetectionsOf(Evaluator):
    """Feeds an evaluator of boxes (e.g. the BoxEvaluator) the detections of SegmentPredictions."""

    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator

    def reset(self) -> None:
        self.evaluator.reset()

    def process(self, batch: dict, predictions: Sequence[SegmentPrediction]) -> None:
        self.evaluator.process(batch, [p.detections for p in predictions])

    def evaluate(self) -> dict[str, Any]:
        return self.evaluator.evaluate()


class MaskEvaluator(Evaluator):
    """Masks of every image at original resolution (see the module docstring); metrics under "mask/...".

    Arguments as for BoxEvaluator. `evaluate()` gives mask/precision, mask/recall, mask/mAP50, mask/mAP50-95,
    mask/per_class, mask/instances, mask/curves and, with save_json, `json_rows`: one COCO row per detection with
    bbox AND RLE segmentation (scorable as both).
    """

    prefix = "mask/"

    def __init__(self, names: Sequence[str], max_det: int = 300, save_json: bool = False,
                 category_ids: Optional[Sequence] = None, coco_ids: Optional[Mapping[str, Any]] = None):
        coco_mask_api()  # COCO's rasteriser is needed; fail before a long run, not after it
        self.names, self.nc, self.max_det, self.save_json = list(names), len(names), max_det, save_json
        self.category_ids, self.coco_ids = category_ids, coco_ids
        self.reset()

    def reset(self) -> None:
        self.masks: list[RunLengths] = []
        self.gt_masks: list[RunLengths] = []
        self.detections: list[np.ndarray] = []  # per image (n, 3) [conf, cls, image index]
        self.labels: list[np.ndarray] = []  # per image (m, 2) [cls, image index]
        self.image_ids: list = []
        self.rows: list[dict] = []

    def process(self, batch: dict, predictions: Sequence[SegmentPrediction]) -> None:
        for i, prediction in enumerate(predictions):
            letterbox = batch["letterboxes"][i]
            labels = ground_truth(batch, i).numpy()
            index = len(self.image_ids)
            self.image_ids.append(image_id(batch["paths"][i], self.coco_ids))
            masks = evaluation_masks(prediction, letterbox)
            det = prediction.detections[:, :6].detach().float().cpu().numpy()
            self.masks.append(masks)
            self.gt_masks.append(ground_truth_masks(batch["segments"][i], labels[:, 1:], letterbox.shape))
            self.detections.append(np.stack((det[:, 4], det[:, 5], np.full(len(det), index)), 1))
            self.labels.append(np.stack((labels[:, 0], np.full(len(labels), index)), 1))
            if self.save_json:
                boxes = letterbox.boxes_to_original(det[:, :4])
                self.rows += detection_rows(self.image_ids[-1], boxes, det[:, 4], det[:, 5], self.category_ids,
                                            masks)

    def evaluate(self) -> dict[str, Any]:
        det = np.concatenate(self.detections) if self.detections else np.zeros((0, 3))
        labels = np.concatenate(self.labels) if self.labels else np.zeros((0, 2))
        rank = image_rank(self.image_ids)
        matching = evaluate_arrays(RunLengths.concat(self.gt_masks), labels[:, 0], rank[labels[:, 1].astype(int)],
                                   RunLengths.concat(self.masks), det[:, 0], det[:, 1], rank[det[:, 2].astype(int)],
                                   self.nc, max_det=self.max_det)
        metrics = matching_metrics(matching, det[:, 0], det[:, 1], self.names)
        return {**{self.prefix + k: v for k, v in metrics.items()}, "json_rows": self.rows}
