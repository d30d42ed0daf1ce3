"""Segmentation deployment: ONNX export (plain, dynamic, in-graph NMS) equal to PyTorch, INT8, and the predictor's
outputs (masks in original pixels in both mask modes, YOLO-seg txt, COCO json with RLE, overlays)."""
from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
from pycocotools import mask as coco_mask
from torch import nn

from deploy_helpers import tiny_model
from yolov9 import YOLOv9
from yolov9.engine.predictor import predict
from yolov9.eval.mask_evaluator import SegmentPrediction
from yolov9.export.exporter import deployable, export, verify
from yolov9.export.quantize import quantize_int8
from yolov9.ops.letterbox import Letterbox
from yolov9.plots.drawing import class_colour
from yolov9.runtime.onnx_backend import OnnxBackend
from yolov9.tasks import task_of

H, W = 64, 96
BACKGROUND = 114
IMGSZ = 192


def segmentation_model(seed: int = 0):
    """The half-width gelan-t-seg of the deploy tests, with random coefficient biases (non-trivial masks)."""
    model = tiny_model("gelan-t-seg", seed=seed)
    generator = torch.Generator().manual_seed(seed)
    for sequence in model.head.cv4:
        sequence[-1].bias.data = torch.randn(sequence[-1].bias.shape, generator=generator)
    return model


@pytest.fixture(scope="module")
def seg_model():
    return segmentation_model()


@pytest.fixture(scope="module")
def seg_onnx(seg_model, tmp_path_factory) -> Path:
    return export(seg_model, imgsz=(H, W), file=tmp_path_factory.mktemp("seg") / "seg.onnx", verbose=False)


def assert_outputs_close(got: tuple, expected: tuple) -> None:
    """Boxes within 1e-4 px + 1e-3 relative; scores, coefficients and prototypes within 1e-4."""
    assert isinstance(got, tuple) and len(got) == 2
    torch.testing.assert_close(got[0][:, :4], expected[0][:, :4], atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(got[0][:, 4:], expected[0][:, 4:], atol=1e-4, rtol=0)
    torch.testing.assert_close(got[1], expected[1], atol=1e-4, rtol=0)


def test_plain_export_has_both_outputs_and_matches_pytorch(seg_model, seg_onnx):
    graph = onnx.load(str(seg_onnx)).graph
    assert [o.name for o in graph.output] == ["output0", "output1"]
    meta = {p.key: p.value for p in onnx.load(str(seg_onnx)).metadata_props}
    assert meta["task"] == "segment"
    images = torch.rand(2, 3, H, W)
    with torch.no_grad():
        expected = seg_model(images)
    assert expected[0].shape == (2, 4 + 3 + 32, 126) and expected[1].shape == (2, 32, H // 4, W // 4)
    assert_outputs_close(OnnxBackend(seg_onnx)(images), expected)
    check = verify(seg_onnx, deployable(seg_model), (H, W), 1, False, 0.25, 0.45, 300, verbose=False)
    assert check["max_abs_diff_boxes"] < 1e-3 and check["max_abs_diff_scores"] < 1e-4
    assert check["max_abs_diff_coefficients"] < 1e-4 and check["max_abs_diff_protos"] < 1e-4


def test_dynamic_export_of_a_dual_seg_model(tmp_path):
    """yolov9-t-dseg (two branches) exports stripped and fused, any batch and stride-multiple size."""
    model = tiny_model("yolov9-t-dseg", seed=1)
    assert model.branches == 2 and model.task == "segment"
    path = export(model, imgsz=64, dynamic=True, file=tmp_path / "dseg.onnx", verbose=False)
    outputs = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]
               for o in onnx.load(str(path)).graph.output}
    assert outputs["output0"][0] == "batch" and outputs["output0"][2] == "anchors"
    assert outputs["output1"] == ["batch", 32, "height", "width"]
    backend = OnnxBackend(path)
    for shape in [(1, 3, 64, 64), (2, 3, 96, 64)]:
        images = torch.rand(shape)
        with torch.no_grad():
            expected = model(images)  # the dual model's eval output: its main branch
        assert_outputs_close(backend(images), expected)


def test_in_graph_nms_keeps_coefficients_and_predicts_like_pytorch(seg_model, tmp_path):
    path = export(seg_model, imgsz=(H, W), nms=True, conf=0.3, iou=0.5, max_det=50, file=tmp_path / "nms.onnx",
                  verbose=False)
    assert [o.name for o in onnx.load(str(path)).graph.output] == [
        "num_dets", "boxes", "scores", "classes", "coefficients", "protos"]
    check = verify(path, deployable(seg_model), (H, W), 1, True, 0.3, 0.5, 50, verbose=False)
    assert check["same_count"] and check["compared"] > 0
    assert check["max_abs_diff_boxes"] < 1e-3 and check["max_abs_diff_coefficients"] < 1e-4
    image = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    ours = YOLOv9(path).predict(image, conf=0.3, iou=0.5, max_det=50, progress=False)[0]
    reference = YOLOv9(seg_model).predict(image, imgsz=(H, W), conf=0.3, iou=0.5, max_det=50, progress=False)[0]
    assert len(ours) == len(reference) > 0
    np.testing.assert_allclose(ours.boxes.xyxy, reference.boxes.xyxy, atol=1e-3)
    assert ours.masks.data.shape == reference.masks.data.shape == (len(ours), H, W)
    assert (ours.masks.data != reference.masks.data).mean() < 1e-3  # only pixels at probability ~0.5 may flip


def test_int8_keeps_coefficients_and_prototypes_float_and_correlates(seg_onnx, tmp_path):
    """The prototype module's 3x3 convs become integer kernels; the convs that make the prototypes and the
    coefficients (their last 1x1) keep float weights."""
    rng = np.random.default_rng(0)
    files = []
    for i in range(4):
        files.append(tmp_path / f"calib{i}.jpg")
        cv2.imwrite(str(files[-1]), cv2.resize(rng.integers(0, 255, (6, 9, 3), dtype=np.uint8), (W, H)))
    int8_path = quantize_int8(seg_onnx, tmp_path / "int8.onnx", files, (H, W))
    graph = onnx.load(str(int8_path)).graph
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in graph.node}
    dequantized = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    int8_weights = {n.name: n.input[1] in dequantized for n in graph.node if n.op_type == "Conv"}
    assert int8_weights["/model.22/proto/cv1/conv/Conv"] and int8_weights["/model.22/proto/cv2/conv/Conv"]
    assert not int8_weights["/model.22/proto/cv3/conv/Conv"]
    assert int8_weights["/model.22/cv4.0/cv4.0.0/conv/Conv"] and not int8_weights["/model.22/cv4.0/cv4.0.2/Conv"]
    images = torch.from_numpy(cv2.imread(str(files[0]))[..., ::-1].transpose(2, 0, 1).copy())[None].float() / 255
    fp32, int8 = OnnxBackend(seg_onnx)(images), OnnxBackend(int8_path)(images)
    for a, b in [(fp32[0][:, :4], int8[0][:, :4]), (fp32[0][:, 7:], int8[0][:, 7:]), (fp32[1], int8[1])]:
        assert np.corrcoef(a.flatten().numpy(), b.flatten().numpy())[0, 1] > 0.9


# A segmenter whose answer is known: the bright pixels


class BrightShapeSegmenter(nn.Module):
    """pred (B, 4 + 2 + 1, 1): the box of the bright pixels, class 1 (0.9), mask coefficient 1; prototypes
    (B, 1, H/4, W/4): +-20 logits where more than half of a 4x4 cell is bright."""

    def forward(self, images: torch.Tensor):
        bright = (images.min(1).values > 0.9).float()  # (B, H, W)
        h, w = images.shape[2:]
        xs, ys = torch.arange(w, dtype=torch.float32), torch.arange(h, dtype=torch.float32)
        cols, rows = bright.amax(1), bright.amax(2)
        x1, x2 = (xs + (1 - cols) * 1e4).amin(1), (xs - (1 - cols) * 1e4).amax(1) + 1
        y1, y2 = (ys + (1 - rows) * 1e4).amin(1), (ys - (1 - rows) * 1e4).amax(1) + 1
        box = torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), 1)
        extra = torch.stack((torch.full_like(x1, 0.05), torch.full_like(x1, 0.9), torch.ones_like(x1)), 1)
        prototypes = (nn.functional.avg_pool2d(bright[:, None], 4) - 0.5) * 40
        return torch.cat((box, extra), 1)[..., None], prototypes


@pytest.fixture(scope="module")
def bright_shape_onnx(tmp_path_factory) -> Path:
    buffer = io.BytesIO()
    torch.onnx.export(BrightShapeSegmenter(), (torch.zeros(1, 3, IMGSZ, IMGSZ),), buffer, opset_version=17,
                      input_names=["images"], output_names=["output0", "output1"], dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    for key, value in {"names": json.dumps(["cat", "disk"]), "stride": "32", "nms": "false", "task": "segment",
                       "imgsz": json.dumps([IMGSZ, IMGSZ])}.items():
        proto.metadata_props.add(key=key, value=value)
    path = tmp_path_factory.mktemp("onnx") / "bright_shape.onnx"
    onnx.save(proto, str(path))
    return path


def disk_image(h: int, w: int, centre: tuple[int, int], radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Grey BGR image with a white disk, and the disk (h, w) bool."""
    image = np.full((h, w, 3), BACKGROUND, np.uint8)
    cv2.circle(image, centre, radius, (255, 255, 255), -1)
    return image, image[..., 0] == 255


@pytest.mark.parametrize("retina_masks", [False, True])
@pytest.mark.parametrize("shape, centre, radius", [((300, 200), (90, 160), 70), ((150, 400), (300, 70), 60)])
def test_masks_are_the_shape_in_original_pixels(bright_shape_onnx, shape, centre, radius, retina_masks):
    image, disk = disk_image(*shape, centre, radius)
    result = YOLOv9(bright_shape_onnx).predict(image, retina_masks=retina_masks, progress=False)[0]
    assert len(result) == 1 and result.masks.data.shape == (1, *shape)
    mask = result.masks.data[0]
    assert (mask & disk).sum() / (mask | disk).sum() > 0.9
    polygon = result.polygons[0]
    assert polygon.ndim == 2 and len(polygon) >= 8
    assert np.abs(np.hypot(*(polygon - centre).T) - radius).max() < 0.06 * radius + 3


def test_predictor_writes_seg_txt_rle_json_and_overlays(bright_shape_onnx, tmp_path):
    image, disk = disk_image(240, 320, (200, 110), 80)
    source = tmp_path / "in" / "7.png"
    source.parent.mkdir()
    cv2.imwrite(str(source), image)
    out = tmp_path / "out"
    (result,) = predict(str(bright_shape_onnx), str(source), save_dir=out, save_txt=True, save_json=True,
                        save_conf=True, progress=False)
    fields = (out / "labels" / "7.txt").read_text().split()
    assert fields[0] == "1" and len(fields) % 2 == 0 and len(fields) >= 2 + 2 * 8  # class, x y pairs, conf
    points = np.array(fields[1:-1], dtype=float).reshape(-1, 2) * (320, 240)
    np.testing.assert_allclose(points, result.polygons[0], atol=1e-3 * 320)
    assert float(fields[-1]) == pytest.approx(0.9)
    rows = json.loads((out / "predictions.json").read_text())
    assert len(rows) == 1 and rows[0]["image_id"] == 7 and rows[0]["category_id"] == 1
    decoded = coco_mask.decode(rows[0]["segmentation"]).astype(bool)
    np.testing.assert_array_equal(decoded, result.masks.data[0])
    annotated = cv2.imread(str(out / "7.png"))
    colour = np.array(class_colour(1))
    inside = annotated[disk & (cv2.erode(disk.astype(np.uint8), np.ones((9, 9))) > 0)]
    np.testing.assert_allclose(inside.mean(0), 0.5 * 255 + 0.5 * colour, atol=2)
    assert (annotated[~disk & (image[..., 0] == BACKGROUND)][:1000] == BACKGROUND).mean() > 0.9
    entry = result.to_list()[0]
    assert entry["name"] == "disk" and len(entry["polygon"]) == len(result.polygons[0])


def test_masks_of_an_image_padded_in_a_batch(seg_model):
    """In a batch, a smaller letterbox is padded at the bottom / right: the same detections and prototypes padded
    that way give the same masks (both modes) as without padding."""
    task, image = task_of(seg_model), np.zeros((50, 90, 3), np.uint8)
    letterbox = Letterbox.fit(image.shape[:2], 96, auto=True, stride=32)  # 64 x 96 canvas
    with torch.no_grad():
        (alone,) = task.postprocess(seg_model(torch.rand(1, 3, *letterbox.canvas)), 0.2, 0.45, 100)
    padded = SegmentPrediction(alone.detections, nn.functional.pad(alone.prototypes, (0, 8, 0, 16), value=-5.0))
    assert len(alone) > 0 and padded.input_shape == (128, 128)
    for retina in (False, True):
        expected = task.results(image, "x.png", None, alone, letterbox, seg_model.names, retina).masks.data
        got = task.results(image, "x.png", None, padded, letterbox, seg_model.names, retina).masks.data
        assert expected.shape == (len(alone), 50, 90) and expected.any()
        np.testing.assert_array_equal(got, expected)
