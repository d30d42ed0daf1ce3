"""Geometry of every transform: render a filled rectangle, transform, the box must cover its pixels within 1 px."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from yolov9.data.augment import box_candidates, copy_paste, mixup, mosaic4, random_perspective, scaled_mosaic4
from yolov9.data.polygons import Polygons
from yolov9.data.transforms import Sample, augment_hsv, flip, letterbox_sample, resize_long_side
from yolov9.ops.letterbox import Letterbox


def rectangle_sample(h: int, w: int, box, with_polygon: bool = False) -> Sample:
    """Black image with one white filled rectangle `box` (x1, y1, x2, y2 exclusive)."""
    image = np.zeros((h, w, 3), np.uint8)
    x1, y1, x2, y2 = box
    image[y1:y2, x1:x2] = 255
    boxes = np.array([box], np.float32)
    rings = [[np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)]] if with_polygon else [[]]
    return Sample(image, boxes, np.zeros(1, np.float32), Polygons.from_rings(rings))


def pixel_box(image: np.ndarray, channel_min: int = 128) -> np.ndarray:
    """Exclusive xyxy bounding box of the bright pixels."""
    ys, xs = np.nonzero(image.min(2) >= channel_min)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def assert_box_covers(sample: Sample, index: int = 0, tolerance: float = 1.0) -> None:
    expected = pixel_box(sample.image)
    np.testing.assert_allclose(sample.boxes[index], expected, atol=tolerance)


@pytest.mark.parametrize("shape,new,auto,scaleup", [((480, 640), 640, False, True), ((480, 640), 640, True, True),
                                                    ((333, 517), (320, 416), False, True),
                                                    ((100, 50), 640, True, False), ((701, 299), 256, True, True)])
def test_letterbox_follows_the_official_rule(shape, new, auto, scaleup):
    h, w = shape
    new_h, new_w = (new, new) if isinstance(new, int) else new
    r = min(new_h / h, new_w / w, 1.0 if not scaleup else math.inf)
    unpad_w, unpad_h = round(w * r), round(h * r)
    dw, dh = new_w - unpad_w, new_h - unpad_h
    if auto:
        dw, dh = dw % 32, dh % 32
    box = Letterbox.fit((h, w), new, auto=auto, scaleup=scaleup)
    out, (gain_h, gain_w), (left, top) = box.apply(np.zeros((h, w, 3), np.uint8)), box.gain, box.pad
    assert out.shape == (unpad_h + dh, unpad_w + dw, 3)
    assert (left, top) == (round(dw / 2 - 0.1), round(dh / 2 - 0.1))
    assert (gain_h, gain_w) == (unpad_h / h, unpad_w / w)
    assert (out[:top] == 114).all() and (out[:, :left] == 114).all()


def test_letterbox_boxes_and_ratio_pad_map_back():
    sample = rectangle_sample(300, 500, (40, 60, 200, 180))
    out, box = letterbox_sample(sample, (640, 640), scaleup=True)
    assert_box_covers(out)
    (gain_h, gain_w), (left, top) = box.gain, box.pad
    back = (out.boxes[0] - (left, top, left, top)) / (gain_w, gain_h, gain_w, gain_h)
    np.testing.assert_allclose(back, [40, 60, 200, 180], atol=0.5)
    np.testing.assert_allclose(box.boxes_to_original(out.boxes[:1]), [[40, 60, 200, 180]], atol=0.5)


def test_resize_long_side_keeps_pixels_and_boxes_aligned():
    sample = rectangle_sample(200, 300, (30, 40, 150, 160))
    image, r = resize_long_side(sample.image, 120, augment=False)
    assert max(image.shape[:2]) == 120
    assert_box_covers(Sample(image, sample.boxes * r, sample.classes))


@pytest.mark.parametrize("horizontal", [True, False])
def test_flip(horizontal):
    sample = flip(rectangle_sample(100, 150, (10, 20, 60, 45), with_polygon=True), horizontal)
    assert_box_covers(sample, tolerance=0)
    segment = sample.polygons.points
    np.testing.assert_allclose([*segment.min(0), *segment.max(0)], sample.boxes[0])


@pytest.mark.parametrize("degrees,shear,scale,translate,perspective",
                         [(0, 0, 0.5, 0.1, 0), (30, 0, 0.2, 0.1, 0), (10, 8, 0.3, 0.2, 0), (0, 0, 0.3, 0, 0.0005)])
def test_random_perspective_keeps_boxes_on_their_pixels(degrees, shear, scale, translate, perspective):
    for seed in range(5):
        sample = rectangle_sample(200, 200, (60, 70, 140, 130))
        out = random_perspective(sample, np.random.default_rng(seed), (200, 200), degrees, translate, scale, shear,
                                 perspective)
        if len(out.boxes):
            assert_box_covers(out, tolerance=1.5 if (degrees or shear or perspective) else 1.0)


def test_random_perspective_with_polygon_gives_the_tight_box():
    sample = rectangle_sample(200, 200, (60, 70, 140, 130), with_polygon=True)
    out = random_perspective(sample, np.random.default_rng(3), (200, 200), degrees=45, translate=0, scale=0,
                             shear=0, perspective=0)
    assert_box_covers(out, tolerance=1.5)


def test_box_candidates_drop_small_and_thin_boxes():
    before = np.array([[0, 0, 100, 100]] * 4, np.float32)
    after = np.array([[0, 0, 90, 90], [0, 0, 2, 50], [0, 0, 20, 20], [0, 0, 300, 2.5]], np.float32)
    assert box_candidates(before, after).tolist() == [True, False, False, False]


def test_mosaic4_places_every_tile_with_its_box():
    rng = np.random.default_rng(0)
    tiles = {i: rectangle_sample(64, 64, (8 * i + 4, 10, 8 * i + 30, 40)) for i in range(4)}
    out = mosaic4(lambda i: tiles[i], [0, 1, 2, 3], 64, rng)
    assert out.image.shape == (128, 128, 3)
    for k in range(len(out.boxes)):
        x1, y1, x2, y2 = out.boxes[k].round().astype(int)
        if (x2 - x1) * (y2 - y1) == 0:
            continue
        crop = out.image[y1:y2, x1:x2]
        assert (crop.min(2) == 255).all(), "box covers pixels outside its rectangle"
        ring = out.image[max(y1 - 1, 0):y2 + 1, max(x1 - 1, 0):x2 + 1].min(2) == 255
        assert ring.sum() == crop.shape[0] * crop.shape[1], "rectangle pixels outside its box"


def test_copy_paste_boxes_cover_pasted_objects():
    sample = rectangle_sample(100, 200, (10, 20, 60, 70), with_polygon=True)
    out = copy_paste(sample, np.random.default_rng(0), p=1.0)
    assert len(out.boxes) == 2
    np.testing.assert_allclose(out.boxes[1], [140, 20, 190, 70])
    assert (out.image[20:70, 141:189] == 255).all() and (out.image[:, 100:139] == 0).all()


def test_mixup_blends_and_keeps_both_label_sets():
    a = rectangle_sample(64, 64, (5, 5, 20, 20))
    b = rectangle_sample(64, 64, (30, 30, 60, 50))
    out = mixup(a, b, np.random.default_rng(0))
    assert len(out.boxes) == 2 and 0 < out.image[10, 10, 0] < 255 and 0 < out.image[40, 40, 0] < 255


def test_hsv_lut_matches_a_direct_float_computation():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out = augment_hsv(image, np.random.default_rng(5), 0.015, 0.7, 0.4)
    gains = np.random.default_rng(5).uniform(-1, 1, 3) * (0.015, 0.7, 0.4) + 1
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = np.floor(hsv[..., 0] * gains[0]) % 180
    hsv[..., 1:] = np.clip(np.floor(hsv[..., 1:] * gains[1:]), 0, 255)
    expected = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    np.testing.assert_array_equal(out, expected)


def test_scaled_mosaic_keeps_every_box_on_its_pixels():
    """The one-step mosaic + scale/translate path: each kept box covers its rectangle's bright pixels within 1 px."""
    tiles = {i: rectangle_sample(90 + 10 * i, 120 - 10 * i, (20 + 3 * i, 25, 70, 60 + 4 * i)) for i in range(4)}
    checked = 0
    for seed in range(12):
        out = scaled_mosaic4(lambda i: tiles[i], [0, 1, 2, 3], 128, np.random.default_rng(seed), 0.1, 0.9)
        assert out.image.shape == (128, 128, 3)
        for x1, y1, x2, y2 in out.boxes:
            lo = np.maximum(np.floor([x1, y1]).astype(int) - 2, 0)
            window = out.image[lo[1]:int(np.ceil(y2)) + 2, lo[0]:int(np.ceil(x2)) + 2]
            found = pixel_box(window) + np.tile(lo, 2)
            np.testing.assert_allclose([x1, y1, x2, y2], found, atol=1.0)
            checked += 1
    assert checked > 12
