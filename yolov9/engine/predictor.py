"""`predict(model, source, ...)`: letterbox -> backend -> NMS -> boxes in original pixels -> Results (+ files).

Works with any backend (PyTorch model or checkpoint, ONNX file with or without in-graph NMS). PyTorch models get
stride-multiple letterboxing (`auto`); exported fixed-shape models get their exported square shape.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence, Union

import cv2
import numpy as np
import torch
from tqdm import tqdm

from yolov9.data.transforms import letterbox
from yolov9.engine.results import Results
from yolov9.engine.sources import Frame, load_source, video_fps
from yolov9.export.runtime import Backend, load_backend
from yolov9.ops.nms import non_max_suppression


def preprocess(images: Sequence[np.ndarray], imgsz: tuple[int, int], auto: bool, stride: int
               ) -> tuple[torch.Tensor, list[tuple[tuple[float, float], tuple[int, int]]]]:
    """BGR images -> float batch (B, 3, H, W) RGB in [0, 1] and per image ((gain_h, gain_w), (pad_w, pad_h)).

    With `auto`, images of one batch may letterbox to different shapes; they are padded at the bottom/right to
    the largest one, which leaves the mapping back to original pixels unchanged.
    """
    boxed, ratio_pad = [], []
    for image in images:
        out, gain, pad = letterbox(image, imgsz, auto=auto, stride=stride)
        boxed.append(out)
        ratio_pad.append((gain, pad))
    h = max(b.shape[0] for b in boxed)
    w = max(b.shape[1] for b in boxed)
    batch = np.full((len(boxed), h, w, 3), 114, dtype=np.uint8)
    for i, b in enumerate(boxed):
        batch[i, :b.shape[0], :b.shape[1]] = b
    tensor = torch.from_numpy(np.ascontiguousarray(batch[..., ::-1].transpose(0, 3, 1, 2)))
    return tensor.float() / 255, ratio_pad


def scale_boxes(boxes: torch.Tensor, gain: tuple[float, float], pad: tuple[int, int], shape: tuple[int, int]
                ) -> torch.Tensor:
    """Boxes (n, 4) xyxy in letterboxed pixels -> original pixels, clipped to shape (h, w)."""
    out = boxes.clone()
    out[:, [0, 2]] = ((out[:, [0, 2]] - pad[0]) / gain[1]).clamp(0, shape[1])
    out[:, [1, 3]] = ((out[:, [1, 3]] - pad[1]) / gain[0]).clamp(0, shape[0])
    return out


def postprocess(output, conf: float, iou: float, max_det: int, classes: Optional[Sequence[int]],
                agnostic: bool) -> list[torch.Tensor]:
    """Backend output -> per image (n, 6) [x1, y1, x2, y2, conf, cls] in letterboxed pixels."""
    if isinstance(output, torch.Tensor):
        return non_max_suppression(output, conf, iou, classes=classes, agnostic=agnostic, max_det=max_det)
    num, boxes, scores, labels = output
    detections = []
    for n, b, s, c in zip(num.view(-1).tolist(), boxes, scores, labels):
        d = torch.cat((b[:n], s[:n, None], c[:n, None].float()), 1)
        keep = d[:, 4] > conf
        if classes is not None:
            keep &= torch.isin(d[:, 5].long(), torch.as_tensor(classes))
        detections.append(d[keep][:max_det])
    return detections


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
        annotated = result.plot()
        if result.frame is None:
            _write_image(self.save_dir / source.name, annotated)
        else:
            self._video(result.path, annotated.shape).write(annotated)
        if self.save_txt:
            labels = self.save_dir / "labels"
            labels.mkdir(exist_ok=True)
            from yolov9.io.atomic import atomic_write_bytes

            atomic_write_bytes(labels / f"{stem}.txt", result.to_yolo_txt(self.save_conf).encode())
        if self.save_json:
            self.coco.extend(result.to_coco(stem))
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
            from yolov9.io.atomic import atomic_write_bytes

            atomic_write_bytes(self.save_dir / "predictions.json", json.dumps(self.coco).encode())


def _write_image(path: Path, image: np.ndarray) -> None:
    from yolov9.io.atomic import atomic_write_bytes

    ok, encoded = cv2.imencode(path.suffix if path.suffix else ".jpg", image)
    if not ok:
        ok, encoded = cv2.imencode(".jpg", image)
        path = path.with_suffix(".jpg")
    atomic_write_bytes(path, encoded.tobytes())


def stream(model, source, imgsz: Union[int, Sequence[int]] = 640, conf: float = 0.25, iou: float = 0.45,
           max_det: int = 1000, classes: Optional[Sequence[int]] = None, agnostic: bool = False, batch: int = 1,
           device: str = "cpu", half: bool = False, save_dir: Optional[Union[str, Path]] = None,
           save_txt: bool = False, save_json: bool = False, save_crop: bool = False, save_conf: bool = False,
           progress: bool = True) -> Iterator[Results]:
    """Like `predict`, but yields Results one by one (constant memory for long videos and webcams)."""
    backend: Backend = load_backend(model, device, half)
    size = (imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz)
    auto = backend.fixed_shape is None
    if not auto:
        size = backend.fixed_shape
    frames = load_source(source)
    writer = OutputWriter(Path(save_dir), save_txt, save_json, save_crop, save_conf) if save_dir else None
    bar = tqdm(total=len(frames) or None, desc="predict", unit="img", disable=not progress)
    try:
        for group in _batches(frames, batch):
            images, ratio_pad = preprocess([f.image for f in group], size, auto, backend.stride)
            detections = postprocess(backend(images), conf, iou, max_det, classes, agnostic)
            for frame, det, (gain, pad) in zip(group, detections, ratio_pad):
                det = det.detach().float().cpu()
                boxes = scale_boxes(det[:, :4], gain, pad, frame.image.shape[:2])
                result = Results(frame.image, frame.path, list(backend.names), boxes.numpy(),
                                 det[:, 4].numpy(), det[:, 5].long().numpy(), frame.frame)
                if writer:
                    writer.write(result)
                bar.update(1)
                yield result
    finally:
        bar.close()
        if writer:
            writer.close()


def predict(model, source, **options) -> list[Results]:
    """Detect objects; returns one Results per image / video frame. See `stream` for the options.

    model: DetectionModel, checkpoint (.pt), .onnx file or backend. source: image, folder, glob, .txt list,
    video, webcam index, numpy BGR image or a list of these. `save_dir` writes annotated outputs there.
    """
    return list(stream(model, source, **options))
