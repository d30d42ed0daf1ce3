"""Training and validation DataLoaders over a dataset config."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Union

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from yolov9.cfg.hyp import Hyperparameters, as_hyperparameters
from yolov9.data.config import load_data_config
from yolov9.data.dataset import DetectionDataset, collate
from yolov9.data.scan import ScanResult, format_report, scan_split

DataConfig = Union[str, Path, Mapping[str, Any]]


class EpochShuffleSampler(Sampler):
    """The dataset's permutation for (seed, epoch); under DDP each rank takes every world_size-th index of it
    (padded to equal length), like torch's DistributedSampler."""

    def __init__(self, dataset: DetectionDataset, rank: int = -1, world_size: int = 1) -> None:
        self.dataset = dataset
        self.rank, self.world_size = max(rank, 0), world_size if rank >= 0 else 1
        self.per_rank = -(-len(dataset) // self.world_size)

    def __len__(self) -> int:
        return self.per_rank

    def __iter__(self) -> Iterator[int]:
        order = self.dataset.shuffled_order()
        order = np.resize(order, self.per_rank * self.world_size)
        return iter(order[self.rank::self.world_size].tolist())


def _worker_init(worker_id: int) -> None:
    cv2.setNumThreads(0)  # each worker is one process; OpenCV threads would oversubscribe the cores


def resolve_config(data_cfg: DataConfig) -> dict:
    """A loaded config (from load_data_config) as is, else load it."""
    if isinstance(data_cfg, Mapping) and "coco" in data_cfg and "nc" in data_cfg:
        return dict(data_cfg)
    return load_data_config(data_cfg)


def scan(data_cfg: DataConfig, split: str, strict: bool = False, verbose: bool = True) -> ScanResult:
    """Scan (or read the cached scan of) one split of a dataset config; prints the summary table."""
    cfg = resolve_config(data_cfg)
    result = scan_split(cfg[split], cfg["nc"], cfg["coco"].get(split, []), strict=strict, split=split)
    if verbose:
        print(format_report(result, split, max_lines=10))
    return result


def _loader(dataset: DetectionDataset, batch: int, workers: int, sampler: Optional[Sampler]) -> DataLoader:
    workers = min(workers, batch)
    return DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=workers,
                      pin_memory=torch.cuda.is_available(), collate_fn=collate,
                      worker_init_fn=_worker_init if workers else None, persistent_workers=workers > 0)


def build_train_loader(data_cfg: DataConfig, imgsz: int, batch: int, hyp: Optional[Hyperparameters] = None,
                       workers: int = 2, seed: int = 0, rank: int = -1, world_size: int = 1,
                       cache: Optional[str] = None, single_cls: bool = False, split: str = "train",
                       strict: bool = False, partner_group: Optional[int] = None, masks: bool = False,
                       overlap: bool = True, mask_ratio: int = 4) -> DataLoader:
    """Augmented, shuffled batches; call `loader.dataset.set_epoch(e)` each epoch, set `.mosaic = False` to close it.

    `hyp`: the resolved hyperparameters (None: the official recipe). `masks`: batches also carry "masks" at
    1 / `mask_ratio` of the canvas (`overlap`: one map per image, else one mask per target row) and "segments"
    (empty lists in training); see `DetectionDataset` and `collate`.

    Workers persist across epochs; the epoch and the mosaic switch are shared with them through shared memory.
    Each worker keeps its last min(8 * batch, 1000) decoded images (unless cache='ram'). Mosaic and mixup
    partners come from the same shuffled group of `partner_group` images (default batch * world_size: the batch
    itself), so each image is decoded about once per epoch; partner_group=0 draws them from the whole dataset.
    """
    cfg = resolve_config(data_cfg)
    dataset = DetectionDataset(scan(cfg, split, strict), imgsz, as_hyperparameters(hyp), seed=seed,
                               single_cls=single_cls, cache=cache, buffer_size=min(8 * batch, 1000),
                               partner_group=partner_group if partner_group is not None else batch * world_size,
                               masks=masks, overlap=overlap, mask_ratio=mask_ratio)
    return _loader(dataset, batch, workers, EpochShuffleSampler(dataset, rank, world_size))


def build_val_loader(data_cfg: DataConfig, split: str = "val", imgsz: int = 640, batch: int = 32,
                     workers: int = 2, stride: int = 32, pad: float = 0.5, single_cls: bool = False,
                     strict: bool = False, cache: Optional[str] = None, rect: bool = True, masks: bool = False,
                     overlap: bool = True, mask_ratio: int = 4) -> DataLoader:
    """Rectangular batches in aspect-ratio order (or, with rect=False, every image letterboxed to imgsz x imgsz,
    as fixed-shape exported models need); each batch carries per image the `Letterbox` from original pixels.
    `masks`: also "masks" (as in `build_train_loader`) and "segments", the target rows' rings in original pixels."""
    cfg = resolve_config(data_cfg)
    dataset = DetectionDataset(scan(cfg, split, strict), imgsz, single_cls=single_cls,
                               rect_batch=batch if rect else None, stride=stride, pad=pad, cache=cache, masks=masks,
                               overlap=overlap, mask_ratio=mask_ratio)
    return _loader(dataset, batch, workers, None)
