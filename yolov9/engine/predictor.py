"""Prediction: letterbox -> backend -> the task's post-processing -> Results in original pixels (+ files).

Works with any backend (PyTorch model or checkpoint, exported file with or without in-graph NMS). Backends with
dynamic shapes get the minimal stride-multiple letterbox; exported fixed-shape models get their exported shape.
With a `Slicing` (`slice_size`), each image runs as overlapping tiles plus the whole image, merged by
`yolov9.engine.slicing`.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence, Union

import cv2
import numpy as np
import torch
from tqdm import tqdm

from yolov9.callbacks import Callbacks
from yolov9.engine.slicing import Slicing
from yolov9.engine.sources import DEFAULT_TIMEOUT, Frame, load_source, video_fps
from yolov9.errors import YOLOv9Error
from yolov9.eval.coco_results import image_id
from yolov9.io.atomic import atomic_write_bytes
from yolov9.ops.letterbox import PAD_VALUE, Letterbox
from yolov9.runtime import load_backend
from yolov9.tasks import Boxes, Results, task_of


def preprocess(images: Sequence[np.ndarray], imgsz: tuple[int, int], auto: bool, stride: int
               ) -> tuple[torch.Tensor, list[Letterbox]]:
    """BGR images -> float batch (B, 3, H, W) RGB in [0, 1] and the letterbox of each image.

    With `auto`, images of one batch may letterbox to different shapes; they are padded at the bottom/right to
    the largest one, which leaves the mapping back to original pixels unchanged.
    """
    boxes = [Letterbox.fit(image.shape[:2], imgsz, auto=auto, stride=stride) for image in images]
    h, w = (max(b.canvas[k] for b in boxes) for k in (0, 1))
    batch = np.full((len(images), h, w, 3), PAD_VALUE, dtype=np.uint8)
    for i, (image, box) in enumerate(zip(images, boxes)):
        batch[i, :box.canvas[0], :box.canvas[1]] = box.apply(image)
    tensor = torch.from_numpy(np.ascontiguousarray(batch[..., ::-1].transpose(0, 3, 1, 2)))
    return tensor.float() / 255, boxes


def _batches(frames: Iterable[Frame], size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class OutputWriter:
    """Writes annotated images / videos, YOLO txt labels, crops and one COCO json into `save_dir`."""

    def __init__(self, save_dir: Path, save_txt: bool, save_json: bool, save_crop: bool, save_conf: bool):
        self.save_dir = Path(save_dir)
        self.save_dir.mkdir(parents=True, exist_ok=True)
        self.save_txt, self.save_json, self.save_crop, self.save_conf = save_txt, save_json, save_crop, save_conf
        self.videos: dict[str, cv2.VideoWriter] = {}
        self.coco: list[dict] = []

    def write(self, result: Results) -> None:
        source = Path(result.path)
        stem = source.stem if result.frame is None else f"{source.stem}_{result.frame}"
        if result.frame is None:
            result.save(self.save_dir / source.name)
        else:
            annotated = result.plot()
            self._video(result.path, annotated.shape).write(annotated)
        if self.save_txt:
            result.save_txt(self.save_dir / "labels" / f"{stem}.txt", self.save_conf)
        if self.save_json:
            self.coco.extend(result.to_coco(image_id(stem)))
        if self.save_crop:
            result.save_crops(self.save_dir / "crops", stem)

    def _video(self, path: str, shape: tuple) -> cv2.VideoWriter:
        if path not in self.videos:
            target = self.save_dir / (Path(path).stem + ".mp4")
            fps = video_fps(path) if Path(path).is_file() else 30.0
            self.videos[path] = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                                (shape[1], shape[0]))
        return self.videos[path]

    def close(self) -> None:
        for writer in self.videos.values():
            writer.release()
        if self.save_json:
            atomic_write_bytes(self.save_dir / "predictions.json", json.dumps(self.coco).encode())


class Predictor:
    """Runs a model on sources; fires on_predict_start / on_predict_batch_end (with `batch`, `results`) /
    on_predict_end. See `stream` for the options."""

    def __init__(self, model, imgsz: Union[int, Sequence[int]] = 640, conf: float = 0.25, iou: float = 0.45,
                 max_det: int = 1000, classes: Optional[Sequence[int]] = None, agnostic: bool = False,
                 batch: int = 1, device: str = "cpu", half: bool = False, retina_masks: bool = False,
                 callbacks: Optional[Callbacks] = None, slicing: Optional[Slicing] = None):
        self.backend = load_backend(model, device, half)
        self.task = task_of(self.backend)
        fixed = self.backend.fixed_shape
        self.auto = fixed is None
        self.size = fixed or ((imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz))
        self.conf, self.iou, self.max_det, self.classes, self.agnostic = conf, iou, max_det, classes, agnostic
        self.batch_size, self.retina_masks, self.slicing = batch, retina_masks, slicing
        self.callbacks = callbacks or Callbacks()
        self.batch: list[Frame] = []
        self.results: list[Results] = []

    def run(self, frames: Iterable[Frame]) -> Iterator[Results]:
        self.callbacks.run("on_predict_start", self)
        for self.batch in _batches(frames, self.batch_size):
            self.results = [self.sliced(f) for f in self.batch] if self.slicing else self.infer(self.batch)
            self.callbacks.run("on_predict_batch_end", self)
            yield from self.results
        self.callbacks.run("on_predict_end", self)

    def infer(self, frames: Sequence[Frame]) -> list[Results]:
        """One forward pass over `frames` -> their Results in original pixels, with `speed` (ms per image)."""
        started = time.perf_counter()
        images, boxes = preprocess([f.image for f in frames], self.size, self.auto, self.backend.stride)
        inferred = time.perf_counter()
        output = self.backend(images)
        done = time.perf_counter()
        predictions = self.task.postprocess(output, self.conf, self.iou, self.max_det, self.classes, self.agnostic)
        speed = {"preprocess": inferred - started, "inference": done - inferred,
                 "postprocess": time.perf_counter() - done}
        speed = {k: 1000 * v / len(frames) for k, v in speed.items()}
        results = [self.task.results(f.image, f.path, f.frame, p, box, self.backend.names, self.retina_masks)
                   for f, p, box in zip(frames, predictions, boxes)]
        for result in results:
            result.speed = dict(speed)
        return results

    def sliced(self, frame: Frame) -> Results:
        """The whole image and its tiles in batches of `batch`, merged (see `yolov9.engine.slicing`); `speed` sums
        the crops' times, the merge counted as postprocessing."""
        shape = frame.image.shape[:2]
        windows = self.slicing.windows(shape)
        crops = [Frame(frame.image[y0:y1, x0:x1], frame.path, frame.frame) for x0, y0, x1, y1 in windows.tolist()]
        parts = [r for batch in _batches(crops, self.batch_size) for r in self.infer(batch)]
        if any(part.masks is not None for part in parts):
            raise YOLOv9Error(f"{self.backend.source}: sliced inference merges boxes only; instance masks across "
                              "tiles are not supported (run without --slice)")
        started = time.perf_counter()
        merged = self.slicing.merge([part.boxes.data for part in parts], windows, shape, self.max_det)
        speed = {k: sum(part.speed[k] for part in parts) for k in parts[0].speed}
        speed["postprocess"] += 1000 * (time.perf_counter() - started)
        return Results(frame.image, frame.path, list(self.backend.names), Boxes(merged, shape), frame.frame, speed)


def stream(model, source, imgsz: Union[int, Sequence[int]] = 640, conf: float = 0.25, iou: float = 0.45,
           max_det: int = 1000, classes: Optional[Sequence[int]] = None, agnostic: bool = False, batch: int = 1,
           device: str = "cpu", half: bool = False, save_dir: Optional[Union[str, Path]] = None,
           save_txt: bool = False, save_json: bool = False, save_crop: bool = False, save_conf: bool = False,
           progress: bool = True, retina_masks: bool = False, callbacks: Optional[Callbacks] = None,
           vid_stride: int = 1, stream_timeout: float = DEFAULT_TIMEOUT, slice_size: Optional[int] = None,
           slice_overlap: float = 0.2) -> Iterator[Results]:
    """Like `predict`, but yields Results one by one (constant memory for long videos and streams)."""
    slicing = Slicing(slice_size, slice_overlap) if slice_size else None
    predictor = Predictor(model, imgsz, conf, iou, max_det, classes, agnostic, batch, device, half, retina_masks,
                          callbacks, slicing)
    frames = load_source(source, vid_stride, stream_timeout)
    writer = OutputWriter(Path(save_dir), save_txt, save_json, save_crop, save_conf) if save_dir else None
    bar = tqdm(total=len(frames) or None, desc="predict", unit="img", disable=not progress)
    try:
        for result in predictor.run(frames):
            if writer:
                writer.write(result)
            bar.update(1)
            yield result
    finally:
        bar.close()
        if writer:
            writer.close()


def predict(model, source, **options) -> list[Results]:
    """Detect (and, with a segmentation model, segment) objects; returns one Results per image / video frame.
    See `stream` for the options.

    model: DetectionModel, checkpoint (.pt), exported file or Backend. source: image, folder, glob, .txt list,
    video, webcam index, stream URL (rtsp, http, ...), .streams list, numpy BGR image or a list of these.
    `save_dir` writes annotated outputs there (masks overlaid; `save_txt`: YOLO-seg polygons; `save_json`: RLE
    masks). `retina_masks`: masks computed at the original image resolution instead of upsampled from the
    network input (segmentation; the official --retina-masks). `vid_stride` N: every N-th video / stream frame;
    `stream_timeout`: seconds without a frame before a stream is dead (an error). `slice_size` S: sliced
    inference on S x S tiles overlapping by `slice_overlap` plus the whole image (`yolov9.engine.slicing`).
    """
    return list(stream(model, source, **options))
