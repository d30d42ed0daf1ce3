"""TaskAlignedAssigner against the official assigner's outputs, edge cases and hypothesis properties."""
from __future__ import annotations

import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from yolov9 import build_model
from yolov9.loss import TaskAlignedAssigner
from yolov9.loss.targets import pad_targets
from yolov9.ops.anchors import make_anchors
from yolov9.ops.boxes import bbox_iou, xywh2xyxy

STRIDES = torch.tensor([4.0, 8.0])
IMAGE = 32  # a 32x32 image with stride-4 and stride-8 levels: 64 + 16 anchors


def grid_anchors() -> torch.Tensor:
    """Anchor centres of the toy image in pixels, (80, 2)."""
    maps = [torch.zeros(1, 1, IMAGE // 4, IMAGE // 4), torch.zeros(1, 1, IMAGE // 8, IMAGE // 8)]
    points, strides = make_anchors(maps, STRIDES)
    return points * strides


def centred_boxes(points: torch.Tensor, half: float) -> torch.Tensor:
    """Boxes of side 2*half around every point: (A, 4)."""
    return torch.cat((points - half, points + half), -1)


def test_matches_official_assigner(official_dir):
    io = torch.load(official_dir / "gelan-t.io.pt", weights_only=True)
    reference = torch.load(official_dir / "gelan-t.loss.pt", weights_only=True)
    model = build_model("gelan-t", nc=80)
    maps = [io[f"train_feats_{k}"] for k in (0, 1, 2)]
    decoded = model.head.decode(maps).transpose(1, 2)  # (B, A, 4 + 80) xywh pixels, sigmoid scores
    labels, boxes, mask = pad_targets(reference["targets"], 2, (256, 320))
    assert torch.allclose(torch.cat((labels, boxes), -1), reference["gt_preprocessed"], atol=1e-4)
    points = reference["anchor_points"] * reference["stride_tensor"]
    out = TaskAlignedAssigner(topk=10, num_classes=80, alpha=0.5, beta=6.0)(
        decoded[..., 4:], xywh2xyxy(decoded[..., :4]), points, labels, boxes, mask)
    target_labels, target_boxes, target_scores, fg_mask, _ = out
    assert torch.equal(fg_mask, reference["main_fg_mask"])
    assert fg_mask.sum(1).tolist() == [21, 30]
    assert torch.equal(target_labels, reference["main_target_labels"])
    assert torch.allclose(target_boxes, reference["main_target_bboxes"], atol=1e-5)
    assert torch.allclose(target_scores, reference["main_target_scores"], atol=1e-5)


def test_no_boxes_in_batch_is_all_background():
    points = grid_anchors()
    scores = torch.rand(2, len(points), 3)
    labels, boxes, scores_out, fg, gt_index = TaskAlignedAssigner(num_classes=3)(
        scores, centred_boxes(points, 2).expand(2, -1, -1), points,
        torch.zeros(2, 0, 1), torch.zeros(2, 0, 4), torch.zeros(2, 0, 1, dtype=torch.bool))
    assert not fg.any() and (labels == 3).all() and (scores_out == 0).all() and (boxes == 0).all()
    assert gt_index.shape == fg.shape and (gt_index == 0).all()


def test_empty_image_and_padding_rows_get_nothing():
    points = grid_anchors()
    gt_boxes = torch.tensor([[[4.0, 4.0, 20.0, 20.0], [0.0, 0.0, 0.0, 0.0]],
                             [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]])
    mask = torch.tensor([[[True], [False]], [[False], [False]]])
    gt_labels = torch.tensor([[[1.0], [0.0]], [[0.0], [0.0]]])
    pred = centred_boxes(points, 6).expand(2, -1, -1)
    labels, boxes, scores, fg, gt_index = TaskAlignedAssigner(topk=4, num_classes=2)(
        torch.full((2, len(points), 2), 0.5), pred, points, gt_labels, gt_boxes, mask)
    assert fg[0].sum() == 4 and not fg[1].any() and (gt_index == 0).all()
    assert (labels[0][fg[0]] == 1).all() and (boxes[0][fg[0]] == gt_boxes[0, 0]).all()
    assert (scores[1] == 0).all() and torch.isfinite(scores).all()


def test_tiny_and_image_sized_boxes():
    points = grid_anchors()
    tiny = torch.tensor([13.0, 13.0, 15.0, 15.0])  # holds exactly one anchor centre, (14, 14)
    whole = torch.tensor([0.0, 0.0, float(IMAGE), float(IMAGE)])
    gt_boxes = torch.stack((tiny, whole)).unsqueeze(0)
    pred = centred_boxes(points, 1.0).unsqueeze(0)
    labels, _, scores, fg, gt_index = TaskAlignedAssigner(topk=10, num_classes=2)(
        torch.full((1, len(points), 2), 0.3), pred, points, torch.tensor([[[0.0], [1.0]]]), gt_boxes,
        torch.ones(1, 2, 1, dtype=torch.bool))
    tiny_anchor = ((points == 14.0).all(-1)).nonzero().item()
    assert fg[0, tiny_anchor] and labels[0, tiny_anchor] == 0 and gt_index[0, tiny_anchor] == 0
    assert torch.equal(gt_index[fg], labels[fg])  # box k has class k here
    assert (labels[0][fg[0]] == 1).sum() == 10  # the image-sized box keeps its top-k
    assert torch.isfinite(scores).all()


def test_degenerate_predictions_and_topk_beyond_anchor_count():
    points = grid_anchors()[:6]
    pred = torch.zeros(1, 6, 4)  # zero-size boxes at the origin
    labels, boxes, scores, fg, _ = TaskAlignedAssigner(topk=50, num_classes=2)(
        torch.zeros(1, 6, 2), pred, points, torch.tensor([[[1.0]]]), torch.tensor([[[0.0, 0.0, 32.0, 8.0]]]),
        torch.ones(1, 1, 1, dtype=torch.bool))
    assert fg.all()  # every in-box anchor is among the top 50 of 6
    assert torch.isfinite(scores).all() and (scores == 0).all()  # zero scores: zero alignment everywhere


def test_shared_anchor_goes_to_best_overlap():
    points = grid_anchors()
    first = torch.tensor([0.0, 0.0, 20.0, 20.0])
    second = torch.tensor([10.0, 10.0, 30.0, 30.0])
    pred = second.expand(1, len(points), 4)  # every prediction equals the second box
    _, boxes, scores, fg, gt_index = TaskAlignedAssigner(topk=100, num_classes=1)(
        torch.full((1, len(points), 1), 0.5), pred, points, torch.zeros(1, 2, 1), torch.stack((first, second))[None],
        torch.ones(1, 2, 1, dtype=torch.bool))
    in_both = ((points > 10) & (points < 20)).all(-1)
    assert in_both.any() and fg[0, in_both].all()
    assert (boxes[0, in_both] == second).all() and (gt_index[0, in_both] == 1).all()
    # normalised scores: each box's best anchor aims at that box's best IoU (here CIoU 1 for the second box)
    assert torch.allclose(scores[0, in_both].max(), torch.tensor(1.0), atol=1e-5)


@st.composite
def scenes(draw):
    n = draw(st.integers(1, 4))
    xy = draw(st.lists(st.tuples(st.floats(0, 20), st.floats(0, 20)), min_size=n, max_size=n))
    wh = draw(st.lists(st.tuples(st.floats(4, 12), st.floats(4, 12)), min_size=n, max_size=n))
    classes = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    order = draw(st.permutations(range(n)))
    seed = draw(st.integers(0, 2 ** 16))
    boxes = torch.tensor([[x, y, x + w, y + h] for (x, y), (w, h) in zip(xy, wh)])
    return boxes, torch.tensor(classes, dtype=torch.float32), list(order), seed


@settings(max_examples=30, deadline=None)
@given(scenes())
def test_invariant_to_ground_truth_order(scene):
    boxes, classes, order, seed = scene
    points = grid_anchors()
    generator = torch.Generator().manual_seed(seed)
    pred = centred_boxes(points, 5.0) + torch.rand(len(points), 4, generator=generator)
    scores = torch.rand(1, len(points), 3, generator=generator) * 0.9 + 0.05
    # ties (two boxes with equal overlap for one anchor) may be broken either way: leave them out
    overlaps = bbox_iou(boxes[:, None], pred[None], kind="ciou").squeeze(-1).clamp(min=0)
    assume(all((overlaps[i] - overlaps[j]).abs().min() > 1e-4 for i in range(len(boxes)) for j in range(i)))
    assigner = TaskAlignedAssigner(topk=5, num_classes=3)
    mask = torch.ones(1, len(boxes), 1, dtype=torch.bool)
    first = assigner(scores, pred[None], points, classes[None, :, None], boxes[None], mask)
    permuted = assigner(scores, pred[None], points, classes[order][None, :, None], boxes[order][None], mask)
    fg = first[3]
    assert torch.equal(fg, permuted[3])
    assert torch.equal(first[0][fg], permuted[0][fg])
    assert torch.allclose(first[1][fg], permuted[1][fg])
    assert torch.allclose(first[2], permuted[2], atol=1e-6)
    assert torch.equal(torch.tensor(order)[permuted.gt_index[fg]], first.gt_index[fg])  # same boxes, renumbered
