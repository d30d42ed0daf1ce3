"""The validator: one pass over a val loader -> P, R, mAP50, mAP50-95 (and per-branch loss, JSON, plots).

`Validator(loader, names, ...)(model)` is what the trainer calls each epoch; `validate(model, data, ...)` builds the
loader itself and is what `yolov9 val` and `YOLOv9.val()` call.
"""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np
import torch

from yolov9.errors import ConfigError
from yolov9.eval.coco import box_ap
from yolov9.eval.metrics import ap_per_class, confusion_matrix, match_predictions
from yolov9.models import DetectionModel
from yolov9.ops.boxes import xywh2xyxy
from yolov9.ops.nms import non_max_suppression

if TYPE_CHECKING:
    from yolov9.export.runtime import OnnxBackend


def to_original_pixels(boxes: torch.Tensor, ratio_pad, orig_shape) -> torch.Tensor:
    """(n, 4) xyxy letterboxed pixels -> original image pixels: (xy - pad) / gain, clipped to the image."""
    (gain_h, gain_w), (pad_w, pad_h) = ratio_pad
    pad = boxes.new_tensor([pad_w, pad_h, pad_w, pad_h])
    gain = boxes.new_tensor([gain_w, gain_h, gain_w, gain_h])
    limits = boxes.new_tensor([orig_shape[1], orig_shape[0]] * 2)
    return torch.minimum(((boxes - pad) / gain).clamp(min=0), limits)


def coco_image_id(path: Union[str, Path]) -> Union[int, str]:
    stem = Path(path).stem
    return int(stem) if stem.isnumeric() else stem


class Validator:
    """Evaluates a model on a val loader (batches of the data pipeline) with NMS and COCO-style metrics."""

    def __init__(self, loader, names: list[str], conf: float = 0.001, iou: float = 0.7, max_det: int = 300,
                 half: bool = False, branch: Optional[int] = None, criterion: Any = None, save_json: bool = False,
                 plots: bool = True, save_dir: Optional[Union[str, Path]] = None,
                 device: Union[str, torch.device] = "cpu",
                 single_cls: bool = False, verbose: bool = True):
        self.loader, self.names, self.nc = loader, list(names), len(names)
        self.conf, self.iou, self.max_det, self.half, self.branch = conf, iou, max_det, half, branch
        self.criterion, self.save_json, self.plots, self.verbose = criterion, save_json, plots, verbose
        self.save_dir = Path(save_dir) if save_dir else None
        self.device, self.single_cls = torch.device(device), single_cls

    @torch.no_grad()
    def __call__(self, model: Union[DetectionModel, "OnnxBackend"]) -> dict[str, Any]:
        """Evaluate a DetectionModel, or an exported model's runtime backend (plain output, main branch only)."""
        if isinstance(model, DetectionModel):
            model.eval()
            dtype = torch.float16 if self.half else next(model.parameters()).dtype
        else:
            self._check_backend(model)
            dtype = torch.float32
        stats, json_rows = [], []
        matrix = np.zeros((self.nc + 1, self.nc + 1), dtype=np.int64)
        loss = torch.zeros(getattr(model, "branches", 1), 3)
        seconds = np.zeros(3)
        images_seen, image_ids = 0, []
        for batch in self.loader:
            start = time.perf_counter()
            images = batch["images"].to(self.device, non_blocking=True).to(dtype) / 255
            targets = batch["targets"].to(self.device)
            mid = time.perf_counter()
            prediction = self._forward(model, images, targets, loss)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)  # honest inference timing
            end = time.perf_counter()
            detections = non_max_suppression(prediction.float(), self.conf, self.iou, agnostic=self.single_cls,
                                             multi_label=True, max_det=self.max_det)
            seconds += (mid - start, end - mid, time.perf_counter() - end)
            height, width = images.shape[2:]
            for i, det in enumerate(detections):
                labels = targets[targets[:, 0] == i, 1:].cpu()
                boxes = xywh2xyxy(labels[:, 1:5] * labels.new_tensor([width, height, width, height]))
                ratio_pad, orig_shape = batch["ratio_pad"][i], batch["orig_shapes"][i]
                labels = torch.cat((labels[:, :1], to_original_pixels(boxes, ratio_pad, orig_shape)), 1)
                det = det.cpu()
                det[:, :4] = to_original_pixels(det[:, :4], ratio_pad, orig_shape)
                image_ids.append(coco_image_id(batch["paths"][i]))
                stats.append((match_predictions(det, labels), det, labels, torch.full((len(det),), images_seen + i),
                              torch.full((len(labels),), images_seen + i)))
                matrix += confusion_matrix(det, labels, self.nc)
                if self.save_json:
                    json_rows += self._json_rows(det, batch["paths"][i])
            images_seen += len(images)
        results = self._metrics(stats, matrix, image_ids)
        per_image_ms = (1000 * seconds / max(images_seen, 1)).tolist()
        results["speed_ms"] = dict(zip(("preprocess", "inference", "nms"), per_image_ms))
        if self.criterion is not None:
            results["val_loss"] = loss / max(len(self.loader), 1)
        if self.save_json:
            results["json"] = self._write_json(json_rows)
        if self.verbose:
            speed = results["speed_ms"]
            print(f"Speed: {speed['preprocess']:.1f} ms pre-process, {speed['inference']:.1f} ms inference, "
                  f"{speed['nms']:.1f} ms NMS per image")
        return results

    def _forward(self, model: DetectionModel, images: torch.Tensor, targets: torch.Tensor,
                 loss: torch.Tensor) -> torch.Tensor:
        """Decoded (B, 4 + nc, A) of the evaluated branch; adds per-branch (box, cls, dfl) to `loss`."""
        if not isinstance(model, DetectionModel):
            return model(images)
        branch = model.head.main_branch if self.branch is None else self.branch
        if self.criterion is None:
            return model(images, all_branches=True)[branch] if self.branch is not None else model(images)
        maps = model.raw_maps(images)
        loss += self.criterion.branch_items([[m.float() for m in b] for b in maps], targets).cpu()
        return model.head.decode(maps[branch], branch)

    def _check_backend(self, backend) -> None:
        where = getattr(backend, "path", "exported model")
        if self.criterion is not None or self.branch is not None:
            raise ConfigError(f"{where}: an exported model has only its main branch and no raw maps; "
                              "validation loss and branch= need the .pt model")
        if backend.has_nms:
            raise ConfigError(f"{where}: exported with in-graph NMS (its own thresholds); validate the plain "
                              "export (without --nms) or the .pt model")

    def _json_rows(self, det: torch.Tensor, path: str) -> list[dict]:
        """COCO results rows for one image (boxes already in original pixels)."""
        xywh = torch.cat((det[:, :2], det[:, 2:4] - det[:, :2]), 1)
        image_id = coco_image_id(path)
        return [{"image_id": image_id, "category_id": int(c), "bbox": [round(v, 3) for v in box], "score": round(s, 5)}
                for box, s, c in zip(xywh.tolist(), det[:, 4].tolist(), det[:, 5].tolist())]

    def _write_json(self, rows: list[dict]) -> Path:
        from yolov9.io.atomic import atomic_write_bytes

        path = (self.save_dir or Path(".")) / "predictions.json"
        atomic_write_bytes(path, json.dumps(rows).encode())
        if self.verbose:
            print(f"Saved {len(rows)} predictions to {path}")
        return path

    def _metrics(self, stats: list, matrix: np.ndarray, image_ids: list) -> dict[str, Any]:
        """Table metrics; AP uses COCO's rules with images ranked by id, so ties break as in pycocotools."""
        if stats:
            tp, det, labels, det_image, label_image = (torch.cat(column).numpy() for column in zip(*stats))
        else:
            tp, det, labels = (np.zeros((0, n)) for n in (10, 6, 5))
            det_image, label_image = np.zeros(0), np.zeros(0)
        curves = ap_per_class(tp.astype(bool), det[:, 4], det[:, 5], labels[:, 0], self.nc)
        order = sorted(range(len(image_ids)), key=lambda k: (isinstance(image_ids[k], str), image_ids[k]))
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        det_image, label_image = rank[det_image.astype(np.int64)], rank[label_image.astype(np.int64)]
        curves["ap"] = box_ap(labels[:, 1:], labels[:, 0], label_image, det[:, :4], det[:, 4], det[:, 5], det_image,
                              self.nc, self.max_det)  # COCO's rules: pycocotools gives the same for the JSON
        seen = curves["positives"] > 0
        ap = curves["ap"]
        mean = (lambda v: float(v[seen].mean()) if seen.any() else 0.0)
        results = {"precision": mean(curves["precision"]), "recall": mean(curves["recall"]),
                   "mAP50": mean(ap[:, 0]), "mAP50-95": mean(ap.mean(1)), "images": len(image_ids),
                   "instances": int(curves["positives"].sum()),
                   "per_class": {self.names[c]: {"precision": float(curves["precision"][c]),
                                                 "recall": float(curves["recall"][c]), "mAP50": float(ap[c, 0]),
                                                 "mAP50-95": float(ap[c].mean())} for c in np.nonzero(seen)[0]},
                   "confusion_matrix": matrix}
        results["fitness"] = 0.1 * results["mAP50"] + 0.9 * results["mAP50-95"]
        if self.verbose:
            self._print_table(results, curves)
        if self.plots and self.save_dir is not None:
            from yolov9.eval.plots import plot_confusion_matrix, plot_f1_curve, plot_pr_curve

            self.save_dir.mkdir(parents=True, exist_ok=True)
            plot_pr_curve(curves, self.names, self.save_dir / "PR_curve.png")
            plot_f1_curve(curves, self.names, self.save_dir / "F1_curve.png")
            plot_confusion_matrix(matrix, self.names, self.save_dir / "confusion_matrix.png")
        return results

    def _print_table(self, results: dict, curves: dict) -> None:
        row = "{:>22}{:>11}{:>11}{:>11.3f}{:>11.3f}{:>11.3f}{:>11.3f}"
        print("{:>22}{:>11}{:>11}{:>11}{:>11}{:>11}{:>11}".format(
            "Class", "Images", "Instances", "P", "R", "mAP50", "mAP50-95"))
        print(row.format("all", results["images"], results["instances"], results["precision"], results["recall"],
                         results["mAP50"], results["mAP50-95"]))
        for name, values in results["per_class"].items():
            c = self.names.index(name)
            print(row.format(name, results["images"], int(curves["positives"][c]), values["precision"],
                             values["recall"], values["mAP50"], values["mAP50-95"]))


def validate(model: Union[DetectionModel, str, Path], data: Union[str, Path, dict], imgsz: int = 640, batch: int = 32,
             conf: float = 0.001, iou: float = 0.7, max_det: int = 300, half: bool = False,
             branch: Optional[int] = None, save_json: bool = False, plots: bool = True,
             save_dir: Optional[Union[str, Path]] = None, device: str = "cpu", workers: int = 2, split: str = "val",
             verbose: bool = True, single_cls: bool = False, criterion: Any = None) -> dict[str, Any]:
    """Validate a model, checkpoint path or exported .onnx file on a dataset YAML split; prints the table and
    returns the metrics."""
    from yolov9.data import build_val_loader, load_data_config

    from yolov9.export.runtime import OnnxBackend

    if isinstance(model, OnnxBackend) or str(model).endswith(".onnx"):
        model = model if isinstance(model, OnnxBackend) else OnnxBackend(model, device)
        nc, stride = len(model.names), max(model.stride, 32)
        if model.fixed_shape is not None:  # square letterbox to the exported size instead of rect batches
            if model.fixed_shape[0] != model.fixed_shape[1]:
                raise ConfigError(f"{model.path}: validation needs a square or --dynamic export, "
                                  f"not {model.fixed_shape[0]}x{model.fixed_shape[1]}")
            imgsz = model.fixed_shape[0]
    else:
        if not isinstance(model, DetectionModel):
            from yolov9.io.checkpoint import load

            model = load(model)
        model = copy.deepcopy(model).to(device)
        if half:
            model = model.half()
        nc, stride = model.nc, max(int(model.stride.max()), 32)
    data_cfg = load_data_config(data)
    if nc != data_cfg["nc"] and not single_cls:
        raise ConfigError(f"{data_cfg['yaml_file'] or 'data config'}: {data_cfg['nc']} classes, but the model "
                          f"predicts {nc}; use a model trained on this dataset (or single_cls=True)")
    rect = getattr(model, "fixed_shape", None) is None
    loader = build_val_loader(data_cfg, split=split, imgsz=imgsz, batch=batch, workers=workers, stride=stride,
                              single_cls=single_cls, rect=rect)
    names = ["item"] if single_cls else data_cfg["names"]
    validator = Validator(loader, names, conf=conf, iou=iou, max_det=max_det, half=half, branch=branch,
                          criterion=criterion, save_json=save_json, plots=plots, save_dir=save_dir, device=device,
                          single_cls=single_cls, verbose=verbose)
    return validator(model)
