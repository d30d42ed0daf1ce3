"""Mask ops against the official segmentation fixtures (rasterisation, post-processing, NMS with mask
coefficients) and against pycocotools (RLE, mask IoU)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pycocotools import mask as coco_mask

from yolov9.ops.letterbox import Letterbox
from yolov9.ops.masks import (box_axes, crop_mask, masks_to_original, masks_to_polygons, overlap_mask, polygon_masks,
                              process_mask, process_mask_upsample)
from yolov9.ops.nms import non_max_suppression
from yolov9.ops.rle import RunLengths, decode, encode, mask_iou, pair_iou

MODELS = ["gelan-c-seg-mini", "yolov9-c-dseg-mini", "gelan-c-dseg-mini"]


def load(folder, name: str) -> dict:
    return torch.load(folder / name, weights_only=True)


def unpack(packed: torch.Tensor, width: int) -> torch.Tensor:
    return torch.from_numpy(np.unpackbits(packed.numpy(), axis=-1, count=width).astype(bool))


def test_crop_keeps_pixels_from_the_first_corner_to_before_the_second():
    boxes = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.5, 0.0, 5.0, 1.5]])  # xyxy in pixels of a 5 x 6 map
    rows, cols = box_axes(boxes, 5, 6)
    assert rows.tolist() == [[False, False, True, True, False], [True, True, False, False, False]]
    assert cols.tolist() == [[False, True, True, False, False, False], [False, True, True, True, True, False]]
    masks = torch.rand(2, 5, 6) + 1
    cropped = crop_mask(masks, boxes)
    inside = rows[:, :, None] & cols[:, None, :]
    assert torch.equal(cropped[inside], masks[inside]) and not cropped[~inside].any()


def assert_masks_close(ours: torch.Tensor, expected: torch.Tensor) -> None:
    """The fixture tolerance: <= 0.5 % of any mask's pixels and <= 1e-4 of all pixels differ."""
    assert ours.shape == expected.shape and ours.dtype == torch.bool
    flipped = ours != expected
    assert flipped.float().mean() <= 1e-4
    per_mask = flipped.flatten(1).sum(1) / expected.flatten(1).sum(1).clamp(min=1)
    assert per_mask.max() <= 5e-3


# rasterisation: exact


@pytest.mark.parametrize("ratio", [1, 4])
def test_polygon_masks_equal_official(official_seg_dir, ratio):
    fixture = load(official_seg_dir, "polygons.pt")
    polygons = [fixture[f"polygon_{k}"].numpy() for k in range(4)]
    shape = fixture["img_size"].tolist()
    np.testing.assert_array_equal(polygon_masks(polygons, shape, ratio), fixture[f"masks_ds{ratio}"].numpy())
    drawn, order = overlap_mask(polygons, shape, ratio)
    np.testing.assert_array_equal(drawn, fixture[f"masks_overlap_ds{ratio}"].numpy())
    np.testing.assert_array_equal(order, fixture[f"overlap_sorted_idx_ds{ratio}"].numpy())
    assert drawn.dtype == np.uint8


@pytest.mark.parametrize("name", MODELS)
def test_dataloader_mask_targets_equal_official(official_seg_dir, name):
    fixture = load(official_seg_dir, f"{name}.loss.pt")
    polygons = [fixture[f"segment_px_{k}"].numpy() for k in range(5)]
    np.testing.assert_array_equal(polygon_masks(polygons, (256, 256), 4), fixture["masks"].numpy())
    drawn, order = overlap_mask(polygons, (256, 256), 4)
    np.testing.assert_array_equal(drawn, fixture["masks_overlap"][0].numpy())
    np.testing.assert_array_equal(order, fixture["overlap_sorted_idx"].numpy())
    torch.testing.assert_close(fixture["targets"][order], fixture["targets_overlap"], rtol=0, atol=0)


def test_overlap_puts_vanished_masks_first_and_smaller_on_top():
    """Areas are sorted as unsigned integers negated: a mask with area 0 after downsampling comes first."""
    big = np.array([[0, 0], [40, 0], [40, 40], [0, 40]], np.float32)
    small = np.array([[8, 8], [20, 8], [20, 20], [8, 20]], np.float32)
    speck = np.array([[30.2, 30.2], [30.9, 30.2], [30.9, 30.9]], np.float32)  # one full-size pixel
    masks = polygon_masks([small, speck, big], (40, 40), 4)
    assert masks.reshape(3, -1).sum(1).tolist()[1] == 0 and masks[0].sum() < masks[2].sum()
    drawn, order = overlap_mask([small, speck, big], (40, 40), 4)
    assert order.tolist() == [1, 2, 0]  # vanished, then by falling area
    assert set(np.unique(drawn[masks[0] > 0])) == {3} and set(np.unique(drawn[(masks[2] > 0) & (masks[0] == 0)])) == {2}
    assert overlap_mask([], (40, 40), 4)[0].shape == (10, 10)


def test_masks_to_polygons_equal_official(official_seg_dir):
    fixture = load(official_seg_dir, "polygons.pt")
    for strategy, key in (("largest", "segments_ds1"), ("concat", "segments_concat_strategy_ds1")):
        outlines = masks_to_polygons(fixture["masks_ds1"], strategy)
        assert [len(o) for o in outlines] == fixture[f"{key}_lengths"].tolist()
        np.testing.assert_array_equal(np.concatenate(outlines), fixture[f"{key}_concat"].numpy())
    assert masks_to_polygons(np.zeros((1, 5, 5)))[0].shape == (0, 2)


# post-processing on the stored predictions


@pytest.mark.parametrize("name", MODELS)
def test_nms_with_mask_coefficients_equals_official(official_seg_dir, name):
    fixture = load(official_seg_dir, f"{name}.io.pt")
    det = non_max_suppression(fixture["eval_pred"], 0.001, 0.7, max_det=300, nm=32)[0]
    torch.testing.assert_close(det, fixture["det"], atol=1e-5, rtol=0)
    det_val = non_max_suppression(fixture["eval_pred"], 0.001, 0.7, max_det=300, nm=32, multi_label=True)[0]
    torch.testing.assert_close(det_val, fixture["det_val"], atol=1e-5, rtol=0)
    boxes_only = non_max_suppression(fixture["eval_pred"][:, :-32], 0.001, 0.7, max_det=300)[0]
    torch.testing.assert_close(boxes_only, fixture["det"][:, :6], rtol=0, atol=0)
    with pytest.raises(ValueError, match="nm"):
        non_max_suppression(fixture["eval_pred"], nm=fixture["eval_pred"].shape[1] - 4)  # no class rows left


@pytest.mark.parametrize("name", MODELS)
def test_process_mask_variants_equal_official(official_seg_dir, name):
    fixture = load(official_seg_dir, f"{name}.io.pt")
    proto, det, det_val = fixture["eval_proto"][0], fixture["det"], fixture["det_val"]
    assert_masks_close(process_mask(proto, det[:, 6:], det[:, :4], (256, 256), upsample=True),
                       unpack(fixture["masks_upsample_packbits"], 256))
    assert_masks_close(process_mask(proto, det_val[:, 6:], det_val[:, :4], (256, 256)),
                       unpack(fixture["masks_val_proto_packbits"], 64))
    upsampled = process_mask_upsample(proto, det_val[:64, 6:], det_val[:64, :4], (256, 256))
    assert_masks_close(upsampled, unpack(fixture["masks_val_crop_after_upsample_packbits"], 256))
    letterbox = Letterbox.fit(fixture["native_shape"].tolist(), 256)  # 150 x 200: gain 1.28, 32 px pad top/bottom
    native = masks_to_original(upsampled, letterbox)
    assert_masks_close(native, unpack(fixture["masks_val_native_packbits"], 200))
    assert native.flatten(1).sum(1).tolist() == pytest.approx(fixture["masks_val_native_area"].tolist(), abs=100)


def test_masks_to_original_checks_the_canvas():
    with pytest.raises(ValueError, match="canvas"):
        masks_to_original(torch.zeros(1, 64, 64, dtype=torch.bool), Letterbox.fit((150, 200), 256))


# RLE and mask IoU against pycocotools


def random_masks(rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
    """Ellipses (some empty, one full) of (n, h, w)."""
    yy, xx = np.mgrid[:h, :w]
    centre = rng.uniform(0, 1, (n, 2, 1, 1)) * np.array([w, h])[:, None, None]
    radii = rng.uniform(0.3, 0.7, (n, 2, 1, 1)) * np.array([w, h])[:, None, None]
    masks = ((xx - centre[:, 0]) / radii[:, 0]) ** 2 + ((yy - centre[:, 1]) / radii[:, 1]) ** 2 < 1
    masks[0], masks[-1] = False, True
    return masks


def pycocotools_rles(masks: np.ndarray) -> list[dict]:
    return coco_mask.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))


@pytest.mark.parametrize("h, w", [(1, 1), (7, 300), (61, 47), (120, 160)])
def test_rle_round_trips_equal_pycocotools(h, w):
    masks = random_masks(np.random.default_rng(h * w), 12, h, w)
    rles = encode(torch.from_numpy(masks))
    expected = pycocotools_rles(masks)
    assert [r["counts"] for r in rles] == [e["counts"].decode() for e in expected]
    assert all(r["size"] == [h, w] for r in rles)
    np.testing.assert_array_equal(decode(rles), masks)
    runs = RunLengths.from_counts([r["counts"] for r in rles], [r["size"] for r in rles])
    np.testing.assert_array_equal(runs.to_masks(), masks)
    direct = RunLengths.from_masks(masks)
    np.testing.assert_array_equal(direct.starts, runs.starts)
    np.testing.assert_array_equal(direct.offsets, runs.offsets)
    np.testing.assert_array_equal(runs.areas, coco_mask.area(expected))
    box = coco_mask.toBbox(expected)
    filled = runs.areas > 0
    np.testing.assert_array_equal(runs.boxes[filled, :2], box[filled, :2])
    np.testing.assert_array_equal(runs.boxes[filled, 2:] - runs.boxes[filled, :2] + 1, box[filled, 2:])


def test_uncompressed_rle_and_polygons_read_as_pycocotools():
    rng = np.random.default_rng(0)
    masks = random_masks(rng, 4, 30, 40)
    flat = [np.concatenate(([False], m.T.ravel(), [False])) for m in masks]
    counts = [np.diff(np.concatenate(([0], np.flatnonzero(f[1:] != f[:-1]), [m.size]))).tolist()
              for f, m in zip(flat, masks)]
    crowd = [{"size": [30, 40], "counts": c} for c in counts]
    compressed = encode(masks)
    polygons = [[[2.5, 3.0, 30.2, 5.5, 20.0, 25.7], [31.0, 20.0, 39.0, 20.0, 35.0, 29.0]],
                [[0, 0, 10, 0, 10, 10, 0, 10]]]
    mixed = [crowd[0], compressed[1], crowd[2], *polygons]
    runs = RunLengths.from_coco(mixed, [[30, 40]] * len(mixed))
    expected = np.concatenate((masks[:3], [coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(p, 30, 40)))
                                           for p in polygons]))
    np.testing.assert_array_equal(runs.to_masks(), expected.astype(bool))
    np.testing.assert_array_equal(decode(mixed, 30, 40), expected.astype(bool))
    np.testing.assert_array_equal(RunLengths.concat([runs.take([4, 0]), runs.take([2])]).to_masks(),
                                  expected[[4, 0, 2]].astype(bool))


def test_mask_iou_equals_pycocotools_with_crowd():
    rng = np.random.default_rng(1)
    dt, gt = random_masks(rng, 30, 50, 70), random_masks(rng, 9, 50, 70)
    crowd = np.arange(9) % 3 == 0
    ours = mask_iou(RunLengths.from_masks(dt), RunLengths.from_masks(gt), crowd)
    expected = coco_mask.iou(pycocotools_rles(dt), pycocotools_rles(gt), crowd.astype(np.uint8))
    np.testing.assert_array_equal(ours, expected)  # the same integer ratios
    d, g = rng.integers(0, 30, 200), rng.integers(0, 9, 200)
    pruned = pair_iou(RunLengths.from_masks(dt), d, RunLengths.from_masks(gt), g, crowd[g], min_iou=0.5)
    reachable = expected[d, g] >= 0.5
    np.testing.assert_array_equal(pruned[reachable], expected[d, g][reachable])
    assert (pruned[~reachable] < 0.5).all()


def test_mask_iou_of_different_sizes_never_matches():
    a, b = RunLengths.from_masks(np.ones((1, 4, 4))), RunLengths.from_masks(np.ones((1, 4, 5)))
    assert mask_iou(a, b).tolist() == [[-1.0]]


def test_malformed_counts_string_is_an_error():
    from yolov9.errors import YOLOv9Error

    with pytest.raises(YOLOv9Error, match="RLE"):
        RunLengths.from_counts(["0a"], [[2, 2]])  # 'a' has the continuation bit but nothing follows
