"""Validator: metrics helpers, letterbox inverse, and an end-to-end `validate` scored again by pycocotools."""
from __future__ import annotations

import contextlib
import io
import json

import cv2
import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from yolov9 import YOLOv9, build_model
from yolov9.errors import ConfigError
from yolov9.data.transforms import letterbox
from yolov9.eval.metrics import coco_ap, match_predictions
from yolov9.eval.validator import to_original_pixels, validate


def test_letterbox_inverse_maps_back_exactly():
    image = np.zeros((300, 500, 3), np.uint8)
    boxed, gain, pad = letterbox(image, (320, 320), auto=False)
    original = torch.tensor([[10.0, 20.0, 400.0, 290.0]])
    gain_h, gain_w = gain
    pad_w, pad_h = pad
    boxed_xyxy = original * torch.tensor([gain_w, gain_h, gain_w, gain_h]) + torch.tensor([pad_w, pad_h, pad_w, pad_h])
    back = to_original_pixels(boxed_xyxy, (gain, pad), (300, 500))
    torch.testing.assert_close(back, original)


def test_match_predictions_analytic():
    labels = torch.tensor([[0, 0, 0, 10, 10], [1, 20, 20, 30, 30]], dtype=torch.float32)
    detections = torch.tensor([[0, 0, 10, 8, 0.9, 0],      # IoU 0.8 with label 0
                               [0, 0, 10, 10, 0.8, 0],     # IoU 1.0 with label 0: takes it at every threshold
                               [20, 20, 30, 30, 0.7, 0]])  # right box, wrong class
    correct = match_predictions(detections, labels)
    assert correct[1].all() and not correct[2].any()
    assert not correct[0].any()  # label 0 is used by the better-matching detection


def test_coco_ap_analytic():
    # 2 positives; ranked hits: TP, FP, TP -> precision 1, 1/2, 2/3 -> monotone 1 (r<=.5), 2/3 (.5<r<=1)
    recall, precision = np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])
    assert coco_ap(recall, precision) == pytest.approx((51 * 1.0 + 50 * 2 / 3) / 101)


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
                   "--save-json", "--no-plots", "--save-dir", str(tmp_path / "run")])
    assert status == 0 and (tmp_path / "run" / "predictions.json").exists()
    assert "mAP50-95" in capsys.readouterr().out
    assert main(["val", "gelan-t", "--data", data, "--imgsz", "64", "--workers", "0"]) == 2  # 80 vs 2 classes


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
