"""Box ops against analytic values, pycocotools and the official fixtures, plus hypothesis properties."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as coco_mask

from yolov9.ops.anchors import bbox2dist, dist2bbox, make_anchors
from yolov9.ops.boxes import box_area, box_iou, bbox_iou, xywh2xyxy, xyxy2xywh

KINDS = ("iou", "giou", "diou", "ciou")
coordinate = st.floats(0, 100, allow_nan=False, width=32)
size = st.floats(0, 50, allow_nan=False, width=32)  # zero sizes included: degenerate boxes


@st.composite
def boxes_xyxy(draw, n: int = 8) -> torch.Tensor:
    rows = [[draw(coordinate), draw(coordinate), draw(size), draw(size)] for _ in range(n)]
    xywh = torch.tensor(rows, dtype=torch.float32)
    return torch.cat((xywh[:, :2], xywh[:, :2] + xywh[:, 2:]), -1)


def test_conversions_analytic():
    xyxy = torch.tensor([[10.0, 20.0, 30.0, 60.0]])
    xywh = torch.tensor([[20.0, 40.0, 20.0, 40.0]])
    assert torch.equal(xyxy2xywh(xyxy), xywh)
    assert torch.equal(xywh2xyxy(xywh), xyxy)
    assert box_area(xyxy).item() == 800.0
    assert box_area(torch.tensor([[5.0, 5.0, 1.0, 9.0]])).item() == 0.0  # inverted box


def test_iou_family_analytic():
    a = torch.tensor([0.0, 0.0, 2.0, 2.0])
    b = torch.tensor([1.0, 0.0, 3.0, 2.0])  # same shape, shifted by 1: inter 2, union 6, enclosing 3x2
    far = torch.tensor([4.0, 0.0, 6.0, 2.0])  # disjoint: enclosing 6x2
    assert bbox_iou(a, b, kind="iou").item() == pytest.approx(1 / 3, abs=1e-6)
    assert bbox_iou(a, b, kind="giou").item() == pytest.approx(1 / 3, abs=1e-6)  # enclosing area == union
    assert bbox_iou(a, far, kind="giou").item() == pytest.approx(0 - (12 - 8) / 12, abs=1e-6)
    assert bbox_iou(a, b, kind="diou").item() == pytest.approx(1 / 3 - 1 / 13, abs=1e-6)  # rho^2 1, c^2 9+4
    # same aspect ratio: the CIoU aspect term v is 0, so CIoU == DIoU
    assert bbox_iou(a, b, kind="ciou").item() == pytest.approx(1 / 3 - 1 / 13, abs=1e-6)
    tall = torch.tensor([0.0, 0.0, 1.0, 2.0])  # inside a; IoU 1/2, centres 0.5 apart, aspect 1/2 vs 1
    v = 4 / math.pi ** 2 * (math.atan(1.0) - math.atan(0.5)) ** 2
    alpha = v / (v - 0.5 + 1)
    expected = 0.5 - 0.25 / 8 - v * alpha
    assert bbox_iou(a, tall, kind="ciou").item() == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="unknown IoU kind"):
        bbox_iou(a, b, kind="siou")


def test_ciou_can_go_below_minus_one():
    # Official CIoU = IoU - rho^2/c^2 - v * alpha: far apart boxes with opposite aspect ratios approach -1.5.
    wide = torch.tensor([0.0, 0.0, 100.0, 1e-3])
    tall = torch.tensor([1e4, 1e4, 1e4 + 1e-3, 1e4 + 100.0])
    v = 4 / math.pi ** 2 * (math.atan(1e5) - math.atan(1e-5)) ** 2  # ~1: aspect ratios 1e5 and 1e-5
    rho2 = (1e4 - 50) ** 2 + (1e4 + 50) ** 2  # squared distance of the centres
    c2 = 1e4 ** 2 + (1e4 + 100) ** 2  # squared diagonal of the enclosing box
    expected = 0 - rho2 / c2 - v * v / (v + 1)
    assert expected < -1.49
    assert bbox_iou(wide, tall, kind="ciou").item() == pytest.approx(expected, abs=1e-4)


def test_xywh_input_matches_xyxy():
    a, b = torch.tensor([[1.0, 2.0, 5.0, 9.0]]), torch.tensor([[2.0, 1.0, 6.0, 4.0]])
    for kind in KINDS:
        assert torch.allclose(bbox_iou(xyxy2xywh(a), xyxy2xywh(b), xywh=True, kind=kind), bbox_iou(a, b, kind=kind))


def test_pairwise_iou_matches_pycocotools():
    generator = torch.Generator().manual_seed(1)
    xy = torch.rand(20, 2, generator=generator) * 100
    wh = torch.rand(20, 2, generator=generator) * 40 + 1
    boxes = torch.cat((xy, xy + wh), -1)
    coco_boxes = torch.cat((xy, wh), -1).double().numpy()
    reference = coco_mask.iou(coco_boxes[:12], coco_boxes[12:], np.zeros(8, dtype=np.uint8))
    ours = box_iou(boxes[:12], boxes[12:])
    assert np.allclose(ours.numpy(), reference, atol=1e-5)
    # aligned IoU broadcast over pairs equals the pairwise matrix
    assert torch.allclose(bbox_iou(boxes[:12, None], boxes[None, 12:]).squeeze(-1), ours, atol=1e-5)


@settings(max_examples=60, deadline=None)
@given(boxes_xyxy(), boxes_xyxy())
def test_iou_properties(a: torch.Tensor, b: torch.Tensor):
    for kind, lowest in (("iou", 0.0), ("giou", -1.0), ("diou", -1.0), ("ciou", -1.5)):
        value = bbox_iou(a, b, kind=kind)
        assert torch.isfinite(value).all()
        assert (value >= lowest - 1e-6).all() and (value <= 1 + 1e-6).all()
    assert torch.allclose(bbox_iou(a, b), bbox_iou(b, a), atol=1e-6)  # IoU is symmetric
    assert torch.allclose(box_iou(a, b), box_iou(b, a).T, atol=1e-6)
    iou = bbox_iou(a, b)
    assert (iou >= 0).all() and (iou <= 1 + 1e-6).all()


@settings(max_examples=60, deadline=None)
@given(boxes_xyxy())
def test_self_overlap_is_one(a: torch.Tensor):
    real = (a[:, 2:] - a[:, :2] > 0.5).all(-1)  # eps guards make degenerate boxes' self-IoU ~0, not 1
    for kind in KINDS:
        value = bbox_iou(a, a, kind=kind).squeeze(-1)
        assert torch.allclose(value[real], torch.ones_like(value[real]), atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(boxes_xyxy(), boxes_xyxy())
def test_ciou_gradient_finite_on_degenerate_boxes(a: torch.Tensor, b: torch.Tensor):
    a = a.clone().requires_grad_(True)
    (1 - bbox_iou(a, b, kind="ciou")).sum().backward()
    assert torch.isfinite(a.grad).all()


def test_make_anchors_matches_official(official_dir):
    reference = torch.load(official_dir / "gelan-t.loss.pt", weights_only=True)
    maps = [torch.zeros(1, 1, 256 // s, 320 // s) for s in (8, 16, 32)]
    points, strides = make_anchors(maps, torch.tensor([8.0, 16.0, 32.0]))
    assert torch.equal(points, reference["anchor_points"])
    assert torch.equal(strides, reference["stride_tensor"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 14.5, width=32), min_size=4, max_size=4), coordinate, coordinate)
def test_dist_box_round_trip(distances: list[float], x: float, y: float):
    point = torch.tensor([[x, y]])
    dist = torch.tensor([distances])
    box = dist2bbox(dist, point, xywh=False)
    assert torch.allclose(bbox2dist(point, box, 15), dist, atol=1e-4)
    assert torch.allclose(dist2bbox(dist, point, xywh=True), xyxy2xywh(box), atol=1e-5)


def test_bbox2dist_clamps_below_last_bin():
    far = bbox2dist(torch.tensor([[50.0, 50.0]]), torch.tensor([[0.0, 0.0, 100.0, 51.0]]), 15)
    assert torch.allclose(far, torch.tensor([[14.99, 14.99, 14.99, 1.0]]))
    inverted = bbox2dist(torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 1.0, 2.0, 2.0]]), 15)
    assert (inverted[:, :2] == 0).all()
