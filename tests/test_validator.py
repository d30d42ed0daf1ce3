"""Validator: metrics helpers, letterbox inverse, and an end-to-end `validate` scored again by pycocotools."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from yolov9 import YOLOv9, build_model
from yolov9.errors import ConfigError
from yolov9.engine.validator import validate
from yolov9.eval.box_evaluator import BoxEvaluator
from yolov9.eval.metrics import precision_recall_curves
from yolov9.ops.boxes import ltwh2xyxy, xyxy2xywh
from yolov9.ops.letterbox import Letterbox
from yolov9.runtime import Backend


def test_letterbox_inverse_maps_back_exactly():
    box = Letterbox.fit((300, 500), (320, 320), auto=False)
    assert box.apply(np.zeros((300, 500, 3), np.uint8)).shape == (320, 320, 3)
    original = torch.tensor([[10.0, 20.0, 400.0, 290.0]])
    gain_h, gain_w = box.gain
    pad_w, pad_h = box.pad
    boxed_xyxy = original * torch.tensor([gain_w, gain_h, gain_w, gain_h]) + torch.tensor([pad_w, pad_h, pad_w, pad_h])
    torch.testing.assert_close(box.boxes_to_canvas(original), boxed_xyxy)
    torch.testing.assert_close(box.boxes_to_original(boxed_xyxy), original)


def test_precision_recall_curves_analytic():
    """2 positives; counted detections ranked TP, FP, TP -> the best F1 (0.8) is at the lowest confidence, with
    P = 2/3 and R = 1; an ignored detection (crowd / beyond max_det) takes no part even at the top."""
    tp, counted = np.array([True, False, True, False]), np.array([True, True, True, False])
    curves = precision_recall_curves(tp, counted, np.array([0.9, 0.8, 0.7, 0.95]), np.zeros(4), np.array([2]))
    assert curves["precision"][0] == pytest.approx(2 / 3) and curves["recall"][0] == pytest.approx(1.0)
    assert curves["f1"][0] == pytest.approx(0.8)


def test_p_r_and_map_come_from_one_coco_matching():
    """COCO matches in score order: the first detection (IoU 0.6) takes the label, the better-placed second one is a
    duplicate. mAP50 = 1 and, from the same matching, P = R = 1 at the best F1 (a matcher that pairs by IoU
    first would call the first detection a false positive and report P = 0.5)."""
    evaluator = BoxEvaluator(["a"])
    box = Letterbox.fit((100, 100), (100, 100))
    batch = {"images": torch.zeros(1, 3, 100, 100), "paths": ["1.jpg"], "letterboxes": [box],
             "targets": torch.tensor([[0, 0, 0.5, 0.5, 0.4, 0.4]])}  # label box (30, 30, 70, 70)
    detections = torch.tensor([[30, 30, 70, 54, 0.9, 0], [31, 31, 70, 70, 0.8, 0]])  # IoU 0.6, then 0.95
    evaluator.process(batch, [detections])
    metrics = evaluator.evaluate()
    assert metrics["mAP50"] == pytest.approx(1.0)
    assert metrics["precision"] == pytest.approx(1.0, abs=0.01) and metrics["recall"] == pytest.approx(1.0, abs=0.01)


def write_dataset(root, images: int = 4) -> tuple[str, dict]:
    """Tiny YOLO dataset (big boxes so random weights still hit some) and the matching COCO GT dict."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir()
    (root / "labels").mkdir()
    gt = {"images": [], "categories": [{"id": 0, "name": "a"}, {"id": 1, "name": "b"}], "annotations": []}
    for i in range(images):
        h, w = (96, 128) if i % 2 else (128, 80)
        cv2.imwrite(str(root / "images" / f"{i + 1}.png"), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        lines = []
        for _ in range(3):
            bw, bh = rng.uniform(0.3, 0.9, 2)
            cx, cy = rng.uniform(bw / 2, 1 - bw / 2), rng.uniform(bh / 2, 1 - bh / 2)
            cls = int(rng.integers(0, 2))
            lines.append(f"{cls} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
            box = [(cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h]
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i + 1, "category_id": cls,
                                      "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
        (root / "labels" / f"{i + 1}.txt").write_text("\n".join(lines) + "\n")
        gt["images"].append({"id": i + 1, "width": w, "height": h})
    yaml = root / "data.yaml"
    yaml.write_text(f"path: {root}\ntrain: images\nval: images\nnames: [a, b]\n")
    return str(yaml), gt


def test_validate_end_to_end(tmp_path, capsys):
    data, gt = write_dataset(tmp_path)
    model = build_model("gelan-t", nc=2, names=["a", "b"])
    results = validate(model, data, imgsz=128, batch=2, workers=0, save_json=True, save_dir=tmp_path / "val")
    out = capsys.readouterr().out
    assert "Class" in out and "mAP50-95" in out and "ms NMS per image" in out
    assert {"precision", "recall", "mAP50", "mAP50-95", "fitness"} <= results.keys()
    assert (tmp_path / "val" / "confusion_matrix.png").exists() and (tmp_path / "val" / "PR_curve.png").exists()
    predictions = json.loads(results["json"].read_text())
    assert predictions and {p["image_id"] for p in predictions} <= {1, 2, 3, 4}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(predictions), "bbox")
        evaluator.params.maxDets = [1, 10, 300]  # the validator keeps up to 300 per image
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"][:, :, :, 0, -1]  # (T, R, K) at all areas, 300 detections
    # random weights give many tied scores: equality also checks that ties break as in pycocotools
    assert results["mAP50-95"] == pytest.approx(precision[precision > -1].mean(), abs=1e-6)
    assert results["mAP50"] == pytest.approx(precision[0][precision[0] > -1].mean(), abs=1e-6)


def test_validation_loss_per_branch(tmp_path):
    from yolov9.loss import DetectionLoss

    data, _ = write_dataset(tmp_path, images=2)
    model = build_model("yolov9-t", nc=2, names=["a", "b"])
    results = validate(model, data, imgsz=64, batch=2, workers=0, plots=False, verbose=False,
                       criterion=DetectionLoss(model))
    assert results["val_loss"].shape == (2, 3) and torch.isfinite(results["val_loss"]).all()


def test_cli_val_on_checkpoint(tmp_path, capsys):
    from yolov9.cli import main
    from yolov9.io.checkpoint import save_checkpoint

    data, _ = write_dataset(tmp_path, images=2)
    checkpoint = tmp_path / "model.pt"
    save_checkpoint(checkpoint, build_model("gelan-t", nc=2, names=["a", "b"]))
    status = main(["val", str(checkpoint), "--data", data, "--imgsz", "64", "--batch", "2", "--workers", "0",
                   "--save-json", "--no-plots", "--project", str(tmp_path / "val"), "--name", "run"])
    assert status == 0 and (tmp_path / "val" / "run" / "predictions.json").exists()
    assert "mAP50-95" in capsys.readouterr().out
    assert main(["val", "gelan-t", "--data", data, "--imgsz", "64", "--workers", "0", "--project",
                 str(tmp_path / "val")]) == 2  # 80 vs 2 classes


def test_validate_onnx_export_equals_pytorch(tmp_path):
    from yolov9.export.exporter import export

    data, _ = write_dataset(tmp_path)
    model = build_model("gelan-t", nc=2, names=["a", "b"]).eval()
    options = dict(imgsz=128, batch=2, workers=0, plots=False, verbose=False)
    from_torch = validate(model, data, **options)
    dynamic = export(model, imgsz=128, dynamic=True, file=tmp_path / "dynamic.onnx", verbose=False)
    from_onnx = validate(str(dynamic), data, **options)  # same rect batches as PyTorch
    assert from_onnx["images"] == from_torch["images"] == 4
    assert from_onnx["mAP50-95"] == pytest.approx(from_torch["mAP50-95"], abs=1e-4)
    fixed = export(model, imgsz=128, file=tmp_path / "fixed.onnx", verbose=False)
    square = YOLOv9(str(fixed)).val(data, **options)  # square letterbox to the exported 128x128
    assert square["images"] == 4 and 0 <= square["mAP50-95"] <= 1
    nms_path = export(model, imgsz=128, nms=True, file=tmp_path / "nms.onnx", verbose=False)
    with pytest.raises(ConfigError, match="in-graph NMS"):
        validate(str(nms_path), data, **options)


class OracleBackend(Backend):
    """A 'model' that knows the answer: the ground-truth boxes of one image, jittered, plus false positives,
    returned as the (B, 4 + nc, A) head output in the letterboxed input's pixels."""

    format, names, stride = "oracle", ["car"], 32

    def __init__(self, boxes_xyxy: np.ndarray, shape: tuple[int, int]):
        rng = np.random.default_rng(3)
        jitter = rng.normal(0, 6, boxes_xyxy.shape)
        false = np.array([[50, 50, 120, 110], [900, 100, 980, 160], [230, 450, 330, 560]], np.float64)
        self.boxes = np.concatenate((boxes_xyxy + jitter, false))
        self.scores = np.concatenate((rng.uniform(0.3, 0.95, len(boxes_xyxy)), [0.9, 0.6, 0.8]))
        self.shape = shape

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        box = Letterbox.fit(self.shape, images.shape[2:], scaleup=True)
        xywh = xyxy2xywh(box.boxes_to_canvas(torch.tensor(self.boxes, dtype=torch.float32)))
        return torch.cat((xywh, torch.tensor(self.scores, dtype=torch.float32)[:, None]), 1).T[None]


def test_save_json_scores_against_the_original_coco_json(tmp_path):
    """COCO json input: predictions.json carries the json's own image and category ids, so pycocotools scores it
    against the ORIGINAL annotation file, and gets our mAP."""
    asset = Path(__file__).parent / "assets" / "sahi_terrain2"
    ground_truth = json.loads((asset / "terrain2_coco.json").read_text())
    data = tmp_path / "data.yaml"
    data.write_text(f"path: {asset}\nval: terrain2_coco.json\n")
    boxes = ltwh2xyxy(np.array([a["bbox"] for a in ground_truth["annotations"]], np.float64))
    image = ground_truth["images"][0]
    oracle = OracleBackend(boxes, (image["height"], image["width"]))
    results = validate(oracle, str(data), imgsz=640, batch=1, workers=0, save_json=True, plots=False,
                       save_dir=tmp_path / "val", verbose=False)
    rows = json.loads(results["json"].read_text())
    assert {r["image_id"] for r in rows} == {image["id"]} and {r["category_id"] for r in rows} == {1}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(asset / "terrain2_coco.json"))
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(rows), "bbox")
        evaluator.params.maxDets = [1, 10, 300]
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"][:, :, :, 0, -1]
    assert 0.2 < results["mAP50-95"] < 0.95
    assert results["mAP50-95"] == pytest.approx(precision[precision > -1].mean(), abs=1e-6)
    assert results["mAP50"] == pytest.approx(precision[0][precision[0] > -1].mean(), abs=1e-6)
