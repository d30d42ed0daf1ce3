"""`DetectionDataset`: one scanned split -> augmented (train) or letterboxed rectangular (val) samples, with
instance-mask targets on request (segmentation).

Every random choice for sample i in epoch e comes from a generator seeded by (seed, e, i), so a batch does not
depend on the number of workers or on which worker made it. Metadata lives in flat numpy arrays.
"""
from __future__ import annotations

import ctypes
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from yolov9.cfg.hyp import Hyperparameters
from yolov9.data.augment import copy_paste, mixup, mosaic4, random_perspective, scaled_mosaic4
from yolov9.data.mask_targets import mask_targets
from yolov9.data.scan import ScanResult
from yolov9.data.transforms import (Sample, augment_hsv, letterbox_sample, random_flips, read_image,
                                    resize_long_side, to_targets)
from yolov9.errors import DatasetError
from yolov9.ops.boxes import denormalize_boxes, xywh2xyxy
from yolov9.ops.letterbox import Letterbox


def rect_batch_shapes(shapes: np.ndarray, batch: int, imgsz: int, stride: int, pad: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Order images by aspect ratio (h / w) and give each batch the smallest stride-multiple shape (h, w).

    Returns (order (N,), per-image batch shape (N, 2)); shape = ceil(relative_shape * imgsz / stride + pad) * stride.
    """
    aspect = shapes[:, 0] / shapes[:, 1]
    order = np.argsort(aspect, kind="stable")
    aspect = aspect[order]
    starts = np.arange(0, len(aspect), batch)
    low, high = np.minimum.reduceat(aspect, starts), np.maximum.reduceat(aspect, starts)
    relative = np.ones((len(starts), 2))
    relative[high < 1, 0] = high[high < 1]
    relative[low > 1, 1] = 1 / low[low > 1]
    batch_shapes = (np.ceil(relative * imgsz / stride + pad).astype(np.int64) * stride)
    return order, np.repeat(batch_shapes, batch, axis=0)[: len(aspect)]


class DetectionDataset(Dataset):
    """Samples of one split. Train (`hyp` given): mosaic/mixup/copy-paste/perspective/HSV/flips. Val (`hyp`
    None): rect letterbox. `masks`: each sample also carries its mask targets at 1 / `mask_ratio` of the canvas
    (`overlap`: one map per image, rows in the official area order; else one mask per row)."""

    def __init__(self, scan: ScanResult, imgsz: int, hyp: Optional[Hyperparameters] = None, seed: int = 0,
                 single_cls: bool = False, rect_batch: Optional[int] = None, stride: int = 32, pad: float = 0.5,
                 cache: Optional[str] = None, buffer_size: int = 0, partner_group: int = 0, masks: bool = False,
                 overlap: bool = True, mask_ratio: int = 4) -> None:
        self.files, self.shapes = scan.files, scan.shapes
        self.labels, self.offsets = scan.labels.copy(), scan.offsets
        self.polygons = scan.polygons
        self.masks, self.overlap, self.mask_ratio = masks, overlap, mask_ratio
        if single_cls:
            self.labels[:, 0] = 0
        augment = hyp is not None
        self.imgsz, self.hyp, self.augment, self.seed = imgsz, hyp, augment, seed
        # epoch and mosaic switch live in shared memory, so persistent workers see the trainer's changes
        self._shared = torch.zeros(2, dtype=torch.int64).share_memory_()
        self.mosaic = augment and hyp.mosaic > 0
        self.buffer_size = buffer_size if augment else 0
        self.partner_group = partner_group
        self._order_epoch, self._order, self._position = -1, np.zeros(0, np.int64), np.zeros(0, np.int64)
        # the default recipe only scales and translates: the mosaic is then resized straight to imgsz
        no_copy_paste = not augment or not hyp.copy_paste or not self.polygons.has_polygon.any()
        self.scale_only = no_copy_paste and not (augment and (hyp.degrees or hyp.shear or hyp.perspective))
        self._recent: dict[int, np.ndarray] = {}
        if rect_batch:
            self.order, self.batch_shapes = rect_batch_shapes(self.shapes, rect_batch, imgsz, stride, pad)
        else:
            self.order, self.batch_shapes = np.arange(len(self.files)), None
        self.ram: Optional[tuple[np.ndarray, np.ndarray, np.ndarray]] = None
        if cache == "ram":
            self.cache_images()

    def __len__(self) -> int:
        return len(self.order)

    @property
    def epoch(self) -> int:
        return int(self._shared[0])

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random draws the next iteration uses (call before iterating)."""
        self._shared[0] = int(epoch)

    @property
    def mosaic(self) -> bool:
        """Whether training samples are mosaics; set False to close mosaic (seen by running workers)."""
        return bool(self._shared[1])

    @mosaic.setter
    def mosaic(self, value: bool) -> None:
        self._shared[1] = int(bool(value))

    def resized_shapes(self) -> np.ndarray:
        """(N, 2) (h, w) of every image after resizing its long side to imgsz."""
        r = self.imgsz / self.shapes.max(1)
        return np.minimum(np.maximum(np.round(self.shapes * r[:, None]), 1), self.imgsz).astype(np.int64)

    def cache_images(self) -> None:
        """Decode and resize every image once into one shared uint8 buffer (prints the memory needed first)."""
        shapes = self.resized_shapes()
        sizes = shapes.prod(1) * 3
        starts = np.concatenate(([0], np.cumsum(sizes)))
        print(f"caching {len(sizes)} images in RAM: {starts[-1] / 2 ** 30:.2f} GiB")
        buffer = np.empty(int(starts[-1]), np.uint8)

        def fill(i: int) -> None:
            image = self._decode(i)
            h, w = (int(v) for v in shapes[i])
            if image.shape[:2] != (h, w):  # JPEG reduced decoding can round one pixel differently
                image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
            buffer[starts[i]:starts[i + 1]] = image.reshape(-1)

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(fill, range(len(sizes))))
        self.ram = (buffer, starts, shapes)

    def _decode(self, i: int) -> np.ndarray:
        h, w = (int(v) for v in self.shapes[i])
        image = read_image(self.files[i], self.imgsz if self.augment else 0, max(h, w))
        image, _ = resize_long_side(image, self.imgsz, self.augment)
        return image

    def _image(self, i: int) -> np.ndarray:
        if self.ram is not None:
            buffer, starts, shapes = self.ram
            return buffer[starts[i]:starts[i + 1]].reshape(int(shapes[i, 0]), int(shapes[i, 1]), 3)
        if i in self._recent:
            return self._recent[i]
        image = self._decode(i)
        if self.buffer_size:  # this worker's recently decoded images (FIFO), which mosaics reuse
            self._recent[i] = image
            if len(self._recent) > self.buffer_size:
                del self._recent[next(iter(self._recent))]
        return image

    def load(self, i: int) -> Sample:
        """Image i (scan order) resized to long side imgsz, with its boxes and polygons in pixels.

        In training, an image that became unreadable after the scan is replaced (with a warning) by the next
        readable one and its labels, so one bad file never stops an epoch; validation raises DatasetError.
        """
        tries = min(len(self.files), 16) if self.augment else 1
        for attempt in range(tries):
            try:
                image = self._image(i)
                break
            except DatasetError as e:
                if attempt + 1 == tries:
                    raise
                warnings.warn(f"{e}; using the next image instead", stacklevel=2)
                i = (i + 1) % len(self.files)
        h, w = image.shape[:2]
        lo, hi = self.offsets[i], self.offsets[i + 1]
        rows = self.labels[lo:hi]
        boxes = denormalize_boxes(xywh2xyxy(rows[:, 1:5]), (h, w))
        polygons = self.polygons.slice(lo, hi).map_points(lambda p: p * np.array([w, h], np.float32))
        return Sample(image, boxes.astype(np.float32), rows[:, 0].copy(), polygons)

    def generator(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    def shuffled_order(self) -> np.ndarray:
        """This epoch's permutation of all indices (the training sampler iterates it)."""
        return np.random.default_rng([self.seed, self.epoch, 0x5EED]).permutation(len(self))

    def partner_indices(self, index: int, rng: np.random.Generator, k: int) -> list[int]:
        """k random mosaic / mixup partners: from the shuffled group of `partner_group` images holding `index`
        (the images of its own batch, which the same worker decodes anyway), or from all images when 0."""
        if not self.partner_group:
            return rng.integers(0, len(self.files), k).tolist()
        if self._order_epoch != self.epoch:
            order = self.shuffled_order()
            self._position = np.empty_like(order)
            self._position[order] = np.arange(len(order))
            self._order, self._order_epoch = order, self.epoch
        start = self._position[index] // self.partner_group * self.partner_group
        group = self._order[start:start + self.partner_group]
        return group[rng.integers(0, len(group), k)].tolist()

    def augmented_mosaic(self, index: int, rng: np.random.Generator) -> Sample:
        """Mosaic of `index` and 3 random images, then copy-paste and the perspective warp back to imgsz."""
        hyp, s = self.hyp, self.imgsz
        indices = [index, *self.partner_indices(index, rng, 3)]
        if self.scale_only:
            return scaled_mosaic4(self.load, indices, s, rng, hyp.translate, hyp.scale)
        sample = mosaic4(self.load, indices, s, rng)
        sample = copy_paste(sample, rng, hyp.copy_paste)
        return random_perspective(sample, rng, (s, s), hyp.degrees, hyp.translate, hyp.scale, hyp.shear,
                                  hyp.perspective)

    def train_sample(self, index: int) -> Sample:
        hyp, rng = self.hyp, self.generator(index)
        if self.mosaic and rng.random() < hyp.mosaic:
            sample = self.augmented_mosaic(index, rng)
            if rng.random() < hyp.mixup:
                sample = mixup(sample, self.augmented_mosaic(self.partner_indices(index, rng, 1)[0], rng), rng)
        else:
            sample = self.letterboxed(index, (self.imgsz, self.imgsz), scaleup=True)[0]
            sample = random_perspective(sample, rng, sample.image.shape[:2], hyp.degrees, hyp.translate, hyp.scale,
                                        hyp.shear, hyp.perspective)
        image = augment_hsv(sample.image, rng, hyp.hsv_h, hyp.hsv_s, hyp.hsv_v)
        return random_flips(Sample(image, sample.boxes, sample.classes, sample.polygons), rng, hyp.flipud,
                            hyp.fliplr)

    def letterboxed(self, i: int, shape, scaleup: bool) -> tuple[Sample, Letterbox]:
        """Image i letterboxed to `shape`, and the letterbox from the ORIGINAL file's pixels to the canvas."""
        sample = self.load(i)
        sample, box = letterbox_sample(sample, tuple(int(v) for v in shape), scaleup=scaleup)
        return sample, box.from_source(self.shapes[i])

    def __getitem__(self, index: int):
        """(image uint8 (3, H, W) RGB, targets (n, 5) [cls, cx, cy, w, h] normalised, path, letterbox), plus with
        `masks` the mask targets (see `mask_targets`) and the rows' rings in the original file's pixels (val; one
        empty list per row in training). Rows then follow the order of the mask targets.

        The letterbox maps the original file's pixels to the returned image (identity for augmented samples).
        """
        i = int(self.order[index])
        if self.augment:
            sample = self.train_sample(i)
            box = Letterbox.fit(sample.image.shape[:2], sample.image.shape[:2])
        else:
            shape = self.batch_shapes[index] if self.batch_shapes is not None else (self.imgsz, self.imgsz)
            sample, box = self.letterboxed(i, shape, scaleup=False)
        image = torch.from_numpy(np.stack(cv2.split(sample.image)))  # HWC -> CHW, faster than a strided copy
        if not self.masks:
            return image, torch.from_numpy(to_targets(sample)), str(self.files[i]), box
        masks, order = mask_targets(sample.polygons, sample.boxes, sample.image.shape[:2], self.mask_ratio,
                                    self.overlap)
        sample = sample.select(order)
        return (image, torch.from_numpy(to_targets(sample)), str(self.files[i]), box, torch.from_numpy(masks),
                self.original_rings(i, order))

    def original_rings(self, i: int, order: np.ndarray) -> list[list[np.ndarray]]:
        """Rings (k, 2) float32 in the original file's pixels of image i's rows in `order` (val); in training,
        where rows no longer match the file, an empty list per row."""
        if self.augment:
            return [[] for _ in order]
        h, w = (float(v) for v in self.shapes[i])
        rows = self.polygons.slice(self.offsets[i], self.offsets[i + 1]).select(order)
        return rows.map_points(lambda p: p * np.array([w, h], np.float32)).object_rings()


def _load_malloc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


_MALLOC_TRIM = _load_malloc_trim()


def collate(items: list) -> dict:
    """Stack images; concatenate targets with their batch index -> (n, 6) [batch_index, cls, cx, cy, w, h]; with
    mask targets also "masks" (overlap maps stacked (B, h, w), or per-row masks concatenated (N, h, w)) and
    "segments" (per image, per row, a list of rings).

    Runs in the worker: afterwards free heap pages go back to the OS (glibc malloc_trim), so the churn of
    differently sized image arrays does not grow the worker's RSS from epoch to epoch.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
    images, targets, paths, letterboxes, *mask_parts = zip(*items)
    indexed = [torch.cat((torch.full((len(t), 1), float(b)), t), 1) for b, t in enumerate(targets)]
    batch = {"images": torch.stack(images), "targets": torch.cat(indexed) if indexed else torch.zeros((0, 6)),
             "paths": list(paths), "letterboxes": list(letterboxes)}
    if mask_parts:
        masks, segments = mask_parts
        overlap = masks[0].dim() == 2
        dtype = torch.int32 if any(m.dtype == torch.int32 for m in masks) else torch.uint8
        batch["masks"] = (torch.stack if overlap else torch.cat)([m.to(dtype) for m in masks])
        batch["segments"] = list(segments)
    return batch
