"""ONNX export: parity with PyTorch (gelan and stripped yolov9), in-graph NMS == our NMS, metadata, INT8, CLI."""
from __future__ import annotations

import io
import json

import cv2
import numpy as np
import onnx
import pytest
import torch
from torch import nn

from deploy_helpers import tiny_model
from yolov9 import YOLOv9, strip_auxiliary
from yolov9.cli import main
from yolov9.export.exporter import deployable, export, verify
from yolov9.tasks.end_to_end import EndToEnd
from yolov9.export.quantize import quantize_int8
from yolov9.runtime.onnx_backend import OnnxBackend
from yolov9.io.checkpoint import save_checkpoint
from yolov9.ops.nms import non_max_suppression

H, W = 64, 96


def assert_close_to_torch(got: torch.Tensor, expected: torch.Tensor) -> None:
    """Boxes within 1e-4 px + 1e-3 relative, scores within 1e-4."""
    torch.testing.assert_close(got[:, :4], expected[:, :4], atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(got[:, 4:], expected[:, 4:], atol=1e-4, rtol=0)


@pytest.fixture(scope="module")
def gelan(tmp_path_factory):
    """(model, exported fixed-shape 64x96 ONNX path) of a tiny gelan."""
    model = tiny_model("gelan-t")
    path = export(model, imgsz=(H, W), file=tmp_path_factory.mktemp("gelan") / "gelan.onnx", verbose=False)
    return model, path


def test_gelan_matches_pytorch_and_has_metadata(gelan):
    model, path = gelan
    images = torch.rand(2, 3, H, W)
    with torch.no_grad():
        expected = model(images)
    assert_close_to_torch(OnnxBackend(path)(images), expected)
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["names"]) == model.names and meta["stride"] == "32"
    assert json.loads(meta["imgsz"]) == [H, W] and meta["nms"] == "false"
    assert proto.opset_import[0].version >= 17
    check = verify(path, deployable(model), (H, W), 1, False, 0.25, 0.45, 300, verbose=False)
    assert check["max_abs_diff_boxes"] < 1e-3 and check["max_abs_diff_scores"] < 1e-4


def test_stripped_yolov9_from_checkpoint_via_cli_dynamic(tmp_path):
    """CLI export of a dual-branch checkpoint: stripped, fused, dynamic; equals the main branch in PyTorch."""
    model = tiny_model("yolov9-t", seed=1)
    assert model.branches == 2
    save_checkpoint(tmp_path / "y.pt", model)
    target = tmp_path / "y.onnx"
    assert main(["export", "--weights", str(tmp_path / "y.pt"), "--imgsz", "64", "--dynamic",
                 "--file", str(target)]) == 0
    graph_inputs = onnx.load(str(target)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in graph_inputs] == ["batch", "", "height", "width"]
    backend, stripped = OnnxBackend(target), strip_auxiliary(model)
    for shape in [(1, 3, 64, 64), (2, 3, 96, 64)]:
        images = torch.rand(shape)
        with torch.no_grad():
            expected = model(images)  # eval output of the dual model = its main branch
            torch.testing.assert_close(stripped(images), expected, atol=1e-5, rtol=1e-5)
        assert_close_to_torch(backend(images), expected)


class FixedPrediction(nn.Module):
    """Returns a stored (1, 4 + nc, A) prediction for every image of the batch."""

    def __init__(self, prediction: torch.Tensor):
        super().__init__()
        self.register_buffer("prediction", prediction)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.prediction.expand(images.shape[0], -1, -1) + 0 * images.mean()


@pytest.mark.parametrize("max_det", [20, 1000])
def test_in_graph_nms_equals_pytorch_nms(max_det):
    generator = torch.Generator().manual_seed(max_det)
    nc, anchors = 4, 500
    centres = torch.rand(2, 2, anchors, generator=generator) * 200
    sizes = torch.rand(2, 2, anchors, generator=generator) * 60 + 2
    prediction = torch.cat((centres, sizes, torch.rand(2, nc, anchors, generator=generator)), 1)
    module = EndToEnd(FixedPrediction(prediction[:1]), conf=0.3, iou=0.45, max_det=max_det).eval()
    buffer = io.BytesIO()
    torch.onnx.export(module, (torch.zeros(2, 3, 32, 32),), buffer, opset_version=17, input_names=["images"],
                      dynamo=False)
    assert "NonMaxSuppression" in {n.op_type for n in onnx.load_from_string(buffer.getvalue()).graph.node}
    import onnxruntime as ort

    num, boxes, scores, classes = ort.InferenceSession(buffer.getvalue()).run(None, {"images": np.zeros(
        (2, 3, 32, 32), np.float32)})
    reference = non_max_suppression(prediction[:1].expand(2, -1, -1), 0.3, 0.45, max_det=max_det)
    for i, expected in enumerate(reference):
        n = int(num[i, 0])
        assert n == len(expected) and (n == max_det) == (max_det == 20)
        np.testing.assert_allclose(boxes[i, :n], expected[:, :4].numpy(), atol=1e-4)
        np.testing.assert_allclose(scores[i, :n], expected[:, 4].numpy(), atol=1e-6)
        np.testing.assert_array_equal(classes[i, :n], expected[:, 5].numpy())
        assert not boxes[i, n:].any() and not scores[i, n:].any()


def test_exported_nms_model_predicts_like_pytorch(tmp_path):
    model = tiny_model("gelan-t", seed=2)
    path = export(model, imgsz=64, nms=True, conf=0.5, iou=0.5, max_det=50, file=tmp_path / "e2e.onnx",
                  verbose=False)
    check = verify(path, deployable(model), (64, 64), 1, True, 0.5, 0.5, 50, verbose=False)
    assert check["same_count"] and check["max_abs_diff_boxes"] < 1e-3
    image = cv2.resize(np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8), (64, 64))
    ours = YOLOv9(path).predict(image, conf=0.5, iou=0.5, max_det=50, progress=False)[0]
    reference = YOLOv9(model).predict(image, imgsz=64, conf=0.5, iou=0.5, max_det=50, progress=False)[0]
    assert len(ours) == len(reference) > 0
    np.testing.assert_allclose(ours.boxes.xyxy, reference.boxes.xyxy, atol=1e-3)
    np.testing.assert_array_equal(ours.boxes.cls, reference.boxes.cls)


def test_int8_runs_and_correlates_with_fp32(gelan, tmp_path):
    model, path = gelan
    rng = np.random.default_rng(0)
    files = []
    for i in range(8):
        files.append(tmp_path / f"calib{i}.jpg")
        cv2.imwrite(str(files[-1]), cv2.resize(rng.integers(0, 255, (6, 9, 3), dtype=np.uint8), (96, 64)))
    int8_path = quantize_int8(path, tmp_path / "int8.onnx", files, (H, W))
    proto = onnx.load(str(int8_path))
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in proto.graph.node}
    assert {p.key: p.value for p in proto.metadata_props}["precision"] == "int8"
    images = torch.from_numpy(cv2.imread(str(files[0]))[..., ::-1].transpose(2, 0, 1).copy())[None].float() / 255
    fp32, int8 = OnnxBackend(path)(images), OnnxBackend(int8_path)(images)
    for rows in (slice(0, 4), slice(4, None)):
        correlation = np.corrcoef(fp32[:, rows].flatten().numpy(), int8[:, rows].flatten().numpy())[0, 1]
        assert correlation > 0.9
