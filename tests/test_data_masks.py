"""Segmentation data: polygon labels through scan, every augmentation and the mask targets of the batches.

References: analytic geometry (convex intersections by OpenCV), the colour pixels of rendered shapes, pycocotools'
RLE encoding, and the official dataloader's targets and masks (fixture `*.loss.pt`).
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from pycocotools import mask as coco_mask

from test_data_scan import only_entry, split_with
from yolov9.cfg.hyp import as_hyperparameters
from yolov9.cli import main
from yolov9.data import build_train_loader, build_val_loader
from yolov9.data.dataset import DetectionDataset
from yolov9.data.formats import format_yolo_rows, read_coco
from yolov9.data.mask_targets import instance_masks, mask_targets
from yolov9.data.polygons import Polygons, fill_rings, merge_rings
from yolov9.data.scan import scan_split
from yolov9.ops.masks import polygon_masks

PALETTE = np.array([(230, 25, 25), (25, 200, 25), (25, 25, 230), (230, 230, 25), (230, 25, 230), (25, 230, 230),
                    (240, 140, 20), (140, 20, 240), (20, 140, 240), (250, 250, 250)], np.int32)
BACKGROUND = (40, 40, 40)
SUBPIXEL = 8  # fillPoly shift bits of the exact renderer


def coverage(canvas_shape, rings, factor: int = 8) -> np.ndarray:
    """(h, w) float: the share of each pixel inside the union of the rings (k, 2), given in continuous pixel
    coordinates (supersampled `factor` x `factor`, inside the rings' box only)."""
    mask = np.zeros(canvas_shape, np.float64)
    if not len(rings):
        return mask
    points = np.concatenate(rings)
    (x0, y0), (x1, y1) = np.clip(np.floor(points.min(0)), 0, None).astype(int), np.ceil(points.max(0)).astype(int)
    x1, y1 = min(x1, canvas_shape[1]), min(y1, canvas_shape[0])
    if x1 <= x0 or y1 <= y0:
        return mask
    fine = np.zeros(((y1 - y0) * factor, (x1 - x0) * factor), np.uint8)
    for ring in rings:
        fixed = np.round(((np.asarray(ring, np.float64) - (x0, y0)) * factor - 0.5) * (1 << SUBPIXEL))
        cv2.fillPoly(fine, [fixed.astype(np.int32).reshape(-1, 1, 2)], 1, lineType=cv2.LINE_8, shift=SUBPIXEL)
    mask[y0:y1, x0:x1] = fine.reshape(y1 - y0, factor, x1 - x0, factor).mean((1, 3))
    return mask


def render(canvas_shape, rings) -> np.ndarray:
    """Pixels at least half inside the rings."""
    return coverage(canvas_shape, rings) >= 0.5


def star(cx, cy, r, points=5, inner=0.45):
    angle = np.arange(2 * points) * np.pi / points
    radius = np.where(np.arange(2 * points) % 2, r * inner, r)
    return np.stack((cx + radius * np.sin(angle), cy - radius * np.cos(angle)), 1)


def shapes_in_cell(rng, x0, y0, size):
    """A random shape (triangle, hexagon, star or L) inside the square cell (x0, y0, size)."""
    c, r = np.array([x0, y0]) + size / 2, size * rng.uniform(0.3, 0.45)
    kind = rng.integers(4)
    if kind == 0:
        return c + r * np.stack((np.sin([0, 2.1, 4.2]), -np.cos([0, 2.1, 4.2])), 1) * rng.uniform(0.7, 1, (3, 1))
    if kind == 1:
        angle = np.arange(6) * np.pi / 3 + rng.uniform(0, 1)
        return c + r * np.stack((np.cos(angle), np.sin(angle)), 1)
    if kind == 2:
        return star(*c, r)
    return c - r + np.array([[0, 0], [2, 0], [2, 0.8], [0.8, 0.8], [0.8, 2], [0, 2]]) * r


def make_shapes_dataset(root: Path, n: int = 6, h: int = 150, w: int = 200, seed: int = 0) -> dict:
    """Images of anti-aliased coloured shapes (one palette colour each, no overlaps) on a plain background, with
    their YOLO seg labels."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    files = []
    for i in range(n):
        image = np.full((h, w, 3), BACKGROUND, np.uint8)
        lines, cells = [], [(x, y) for x in range(0, w - 49, 50) for y in range(0, h - 49, 50)]
        for k, cell in enumerate(rng.permutation(len(cells))[:5]):
            ring = shapes_in_cell(rng, *cells[cell], 50)
            share = coverage((h, w), [ring])[:, :, None]
            image = np.round(image * (1 - share) + PALETTE[(i + k) % len(PALETTE)] * share).astype(np.uint8)
            lines.append(f"{k % 3} " + " ".join(f"{v:.6f}" for v in (ring / (w, h)).ravel()))
        files.append(root / "images" / f"{i}.png")
        cv2.imwrite(str(files[-1]), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        (root / "labels" / f"{i}.txt").write_text("\n".join(lines) + "\n")
    return {"path": root, "train": files, "val": files, "test": [], "names": ["a", "b", "c"], "nc": 3,
            "coco": {"train": [], "val": []}}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> dict:
    return make_shapes_dataset(tmp_path_factory.mktemp("shapes"))


def colour_share(image: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """(h, w) where each pixel lies between the background (0) and `colour` (1): blended edge pixels count for the
    side they are closer to."""
    direction = colour.astype(np.float64) - BACKGROUND
    return ((image.astype(np.float64) - BACKGROUND) @ direction) / (direction @ direction)


def assert_masks_follow_the_pixels(sample, min_area: int = 150, min_iou: float = 0.9) -> int:
    """Every object's box is its polygon's box, and its polygon covers the pixels of its colour (IoU > 0.9)
    where no other object's polygon lies; returns the number of objects checked."""
    h, w = sample.image.shape[:2]
    np.testing.assert_allclose(sample.polygons.boxes(sample.boxes), sample.boxes, atol=1e-4)
    assert sample.polygons.has_polygon.all()
    masks = np.stack([render((h, w), rings) for rings in sample.polygons.object_rings()]) if len(sample.boxes) \
        else np.zeros((0, h, w), bool)
    nearest = ((sample.image[:, :, None].astype(np.int32) - PALETTE) ** 2).sum(-1).argmin(-1)
    checked = 0
    for j, mask in enumerate(masks):
        if mask.sum() < min_area:
            continue
        own = mask & ~masks[np.arange(len(masks)) != j].any(0)
        colour = PALETTE[np.bincount(nearest[own], minlength=len(PALETTE)).argmax()]
        x1, y1, x2, y2 = np.round(sample.boxes[j]).astype(int) + (-2, -2, 2, 2)
        window = np.zeros_like(mask)
        window[max(y1, 0):y2, max(x1, 0):x2] = True
        pixels = (colour_share(sample.image, colour) >= 0.5) & window & ~(masks.any(0) & ~own)
        iou = (own & pixels).sum() / (own | pixels).sum()
        assert iou > min_iou, (j, iou)
        checked += 1
    return checked


AUGMENTATIONS = {
    "scaled mosaic": {},
    "mosaic + perspective": {"degrees": 20.0, "shear": 6.0, "perspective": 0.0008},
    "mosaic + copy-paste": {"copy_paste": 1.0, "degrees": 5.0},
    "single image + perspective": {"mosaic": 0.0, "degrees": 30.0, "shear": 8.0, "perspective": 0.0008,
                                   "scale": 0.3},
}


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_polygons_follow_every_augmentation(shapes, name):
    hyp = as_hyperparameters({"hsv_h": 0.0, "hsv_s": 0.0, "hsv_v": 0.0, "mixup": 0.0, "copy_paste": 0.0,
                              "flipud": 0.5, "fliplr": 0.5, **AUGMENTATIONS[name]})
    dataset = DetectionDataset(scan_split(shapes["train"], 3, use_cache=False), 192, hyp, seed=1)
    assert dataset.scale_only == (name == "scaled mosaic")
    checked = 0
    for epoch in range(3):
        dataset.set_epoch(epoch)
        for i in range(len(dataset)):
            checked += assert_masks_follow_the_pixels(dataset.train_sample(i))
    assert checked > 40


def test_val_letterbox_keeps_polygons_on_their_pixels(shapes):
    dataset = DetectionDataset(scan_split(shapes["val"], 3, use_cache=False), 160, rect_batch=2)
    for index in range(len(dataset)):
        sample, _ = dataset.letterboxed(int(dataset.order[index]), dataset.batch_shapes[index], scaleup=False)
        assert assert_masks_follow_the_pixels(sample, min_area=60) >= 3


def test_mixup_keeps_both_polygon_sets(shapes):
    hyp = as_hyperparameters({"mixup": 1.0})
    dataset = DetectionDataset(scan_split(shapes["train"], 3, use_cache=False), 128, hyp, seed=2)
    sample = dataset.train_sample(0)
    np.testing.assert_allclose(sample.polygons.boxes(sample.boxes), sample.boxes, atol=1e-4)
    assert sample.polygons.has_polygon.all() and len(sample.boxes) > 5


def test_clip_equals_the_convex_intersection():
    rng = np.random.default_rng(0)
    rings = [cv2.convexHull((rng.uniform(-40, 140, (12, 2))).astype(np.float32)).reshape(-1, 2) for _ in range(30)]
    clipped = Polygons.from_rings([[r] for r in rings]).clip(0, 0, 100, 80)
    square = np.array([[0, 0], [100, 0], [100, 80], [0, 80]], np.float32)
    expected = [cv2.intersectConvexConvex(r, square)[0] for r in rings]
    got = np.zeros(len(rings))
    for j, object_rings in enumerate(clipped.object_rings()):
        got[j] = sum(cv2.contourArea(r) for r in object_rings)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-2)
    assert (clipped.points >= 0).all() and (clipped.points <= (100, 80)).all()


def test_clip_of_concave_rings_covers_the_cropped_pixels():
    rings = [star(20, 30, 28), np.array([[60, -20], [130, -20], [130, 50], [90, 50], [90, 10], [60, 10]]),
             np.array([[200, 200], [240, 200], [240, 240]])]  # the last lies outside: dropped
    clipped = Polygons.from_rings([[r] for r in rings]).clip(0, 0, 100, 60)
    assert clipped.ring_counts.tolist() == [1, 1, 0]
    for ring, object_rings in zip(rings[:2], clipped.object_rings()):
        whole = render((300, 300), [np.asarray(ring) + 100])[100:160, 100:200]
        np.testing.assert_array_equal(render((60, 100), object_rings), whole)


def test_select_slice_concat_agree_with_lists():
    rng = np.random.default_rng(3)
    objects = [[rng.uniform(0, 9, (int(rng.integers(3, 7)), 2)) for _ in range(int(rng.integers(0, 3)))]
               for _ in range(9)]
    polygons = Polygons.from_rings(objects)

    def as_lists(p):
        return [[r.tolist() for r in rings] for rings in p.object_rings()]

    reference = [[np.float32(r).tolist() for r in rings] for rings in objects]
    assert as_lists(polygons) == reference
    assert as_lists(polygons.select(np.array([7, 0, 3, 3]))) == [reference[i] for i in (7, 0, 3, 3)]
    assert as_lists(polygons.slice(2, 6)) == reference[2:6]
    assert as_lists(Polygons.concat([polygons.slice(0, 4), polygons.slice(4, 9)])) == reference
    boxes = polygons.boxes(np.full((9, 4), -1.0))
    for box, rings in zip(boxes, objects):
        points = np.concatenate(rings) if rings else None
        assert box.tolist() == ([-1.0] * 4 if points is None else np.float32([*points.min(0), *points.max(0)]).tolist())


def test_merged_rings_fill_their_union():
    rings = [np.array([[5, 5], [30, 5], [30, 25], [5, 25]]), star(60, 40, 15), np.array([[10, 50], [30, 70], [5, 75]])]
    union = fill_rings(np.zeros((90, 90), np.uint8), rings)
    merged = fill_rings(np.zeros((90, 90), np.uint8), [merge_rings(rings)])
    assert (merged != union).sum() <= 60  # only the zero-width bridges' pixels differ
    assert (union & ~merged).sum() == 0


POLYGON_ERRORS = [
    ("0 0.1 0.1 0.2 0.1 0.2\n", "1", "6 values; expected 5 (cls cx cy w h) or an odd number >= 7 (polygon)"),
    ("0 0.1 0.1 0.2 0.1 0.2 0.3 0.4\n", "1", "8 values; expected 5 (cls cx cy w h) or an odd number >= 7 (polygon)"),
    ("0 0.5 0.5 0.2 0.2\n1 0.1 0.1 nan 0.1 0.2 0.3\n", "2", "NaN or infinite value"),
    ("1 0.1 0.1 1.2 0.1 0.5 0.6\n", "1", "polygon with box [0.1, 0.1, 1.2, 0.6] outside [0, 1] beyond tolerance 0.01"),
]


@pytest.mark.parametrize("text,line,message", POLYGON_ERRORS)
def test_bad_polygon_row_is_named_and_its_image_skipped(tmp_path, text, line, message):
    files, bad = split_with(tmp_path, "bad.png", text)
    result = scan_split(files, nc=3, use_cache=False)
    assert only_entry(result, "error") == (str(tmp_path / "labels" / "train" / "bad.txt"), line, "error", message)
    assert result.skipped == 1 and str(bad) not in result.files


def test_polygon_overshoot_is_clipped(tmp_path):
    files, bad = split_with(tmp_path, "edge.png", "2 0.5 0.2 1.005 0.2 1.005 0.8 0.5 0.8\n")
    result = scan_split(files, nc=3, use_cache=False)
    assert only_entry(result, "fixed")[1:] == ("1", "fixed", "coordinates slightly outside [0, 1]; clipped")
    rows, polygons = result.image_labels(list(result.files).index(str(bad)))
    assert polygons.ring_counts.tolist() == [1]
    np.testing.assert_allclose(polygons.boxes(rows[:, 1:]), [[0.5, 0.2, 1.0, 0.8]], atol=1e-6)
    np.testing.assert_allclose(rows, [[2, 0.75, 0.5, 0.5, 0.6]], atol=1e-6)


def test_duplicate_rows_need_equal_polygons(tmp_path):
    square, diamond = "0.2 0.2 0.6 0.2 0.6 0.6 0.2 0.6", "0.4 0.2 0.6 0.4 0.4 0.6 0.2 0.4"  # one box, two shapes
    files, bad = split_with(tmp_path, "dup.png", f"1 {square}\n1 {diamond}\n1 {square}\n")
    result = scan_split(files, nc=3, use_cache=False)
    assert only_entry(result, "fixed")[1:] == ("3", "fixed", "duplicate row; dropped")
    assert result.image_labels(list(result.files).index(str(bad)))[1].ring_counts.tolist() == [1, 1]


def coco_json(path: Path, annotations: list, h: int = 40, w: int = 50) -> Path:
    images = [{"id": 1, "file_name": "a.png", "width": w, "height": h}]
    for k, a in enumerate(annotations):
        a.setdefault("id", k + 1)
        a.setdefault("image_id", 1)
        a.setdefault("category_id", 1)
        a.setdefault("iscrowd", 0)
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 1, "name": "x"}]}))
    return path


def rle_of(mask: np.ndarray, compressed: bool) -> dict:
    """COCO RLE of a bool mask: pycocotools' compressed string, or the uncompressed list of run lengths
    (column-major, clear run first), checked against pycocotools."""
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    if compressed:
        return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}
    flat = mask.T.ravel()
    counts = np.diff(np.concatenate(([0], np.flatnonzero(np.diff(flat.astype(np.int8))) + 1, [flat.size])))
    uncompressed = {"size": list(mask.shape), "counts": ([0] if flat[0] else []) + counts.tolist()}
    assert coco_mask.frPyObjects(uncompressed, *mask.shape)["counts"] == rle["counts"]
    return uncompressed


@pytest.mark.parametrize("compressed", [True, False])
def test_coco_polygons_rle_and_crowd(tmp_path, compressed):
    mask = np.zeros((40, 50), bool)
    mask[5:15, 4:20] = True
    mask[22:35, 30:46] = True  # two parts
    square = [10, 10, 20, 10, 20, 20, 10, 20]
    annotations = [
        {"bbox": [10, 10, 35, 25], "segmentation": [square, [30, 25, 45, 25, 45, 35]]},  # two polygons: both kept
        {"bbox": [4, 5, 42, 30], "segmentation": rle_of(mask, compressed)},
        {"bbox": [0, 0, 50, 40], "segmentation": rle_of(~mask, True), "iscrowd": 1},  # skipped
        {"bbox": [1, 1, 5, 5], "segmentation": [[1, 1, 6, 1]]},  # too few points: dropped, box kept
    ]
    labels = read_coco(coco_json(tmp_path / "instances_val.json", annotations))["a.png"]
    assert len(labels.rows) == 3
    assert labels.polygons.ring_counts.tolist() == [2, 2, 0]
    assert [tuple(p[1:3]) for p in labels.problems] == [("annotation 4", "fixed")]
    rings = labels.polygons.object_rings()
    np.testing.assert_allclose(rings[0][0] * (50, 40), np.reshape(square, (-1, 2)), atol=1e-4)
    drawn = fill_rings(np.zeros((40, 50), np.uint8), [r * (50, 40) for r in rings[1]])
    np.testing.assert_array_equal(drawn.astype(bool), mask)  # contours of the RLE parts redraw it exactly


def test_unreadable_rle_skips_the_image(tmp_path):
    annotations = [{"bbox": [1, 1, 5, 5], "segmentation": {"size": [40, 50], "counts": "#!~~"}}]
    labels = read_coco(coco_json(tmp_path / "instances_val.json", annotations))["a.png"]
    assert [(p.line, p.level) for p in labels.problems] == [("annotation 1", "error")]
    assert "unreadable RLE segmentation" in labels.problems[0].message and not len(labels.rows)


def test_scan_cache_keeps_every_ring_and_check_counts_them(tmp_path, capsys):
    image = tmp_path / "images" / "val" / "a.png"
    image.parent.mkdir(parents=True)
    cv2.imwrite(str(image), np.zeros((40, 50, 3), np.uint8))
    annotations = [{"bbox": [10, 10, 35, 25], "segmentation": [[10, 10, 20, 10, 20, 20], [30, 25, 45, 25, 45, 35]]},
                   {"bbox": [1, 1, 5, 5]}]
    coco = coco_json(tmp_path / "instances_val.json", annotations)
    first = scan_split([image], 1, coco=[coco])
    again = scan_split([image], 1, coco=[coco])
    assert again.from_cache and not first.from_cache
    for name in ("points", "rings", "rows"):
        np.testing.assert_array_equal(getattr(again.polygons, name), getattr(first.polygons, name))
    assert again.polygons.ring_counts.tolist() == [2, 0]
    (tmp_path / "data.yaml").write_text(f"path: {tmp_path}\nval: instances_val.json\n")
    assert main(["data", "check", str(tmp_path / "data.yaml")]) == 0
    assert "rows with polygons: 1 of 2 (1 with several polygons, 2 polygons in all)" in capsys.readouterr().out
    lines = format_yolo_rows(read_coco(coco)["a.png"]).splitlines()  # two rings joined: 3 + (3 + 1 + 1) points
    assert len(lines) == 2 and len(lines[0].split()) == 1 + 2 * 8 and len(lines[1].split()) == 5
    batch = next(iter(build_val_loader(tmp_path / "data.yaml", imgsz=64, batch=1, workers=0, masks=True,
                                       overlap=False, mask_ratio=1)))
    rings, no_rings = batch["segments"][0]
    for ring, polygon in zip(rings, annotations[0]["segmentation"]):  # original pixels, both rings
        np.testing.assert_allclose(ring, np.reshape(polygon, (-1, 2)), atol=1e-4)
    assert no_rings == [] and batch["masks"][1].sum() > 0  # the box-only row's mask is its filled box
    box = batch["letterboxes"][0].boxes_to_canvas(np.array([1.0, 1, 6, 6]))
    ys, xs = torch.nonzero(batch["masks"][1], as_tuple=True)
    assert (xs.min(), ys.min()) == tuple(np.floor(box[:2])) and (xs.max(), ys.max()) == tuple(np.floor(box[2:]))


def test_instance_masks_fill_boxes_and_unions():
    boxes = np.array([[4, 4, 20, 12], [0, 0, 40, 40], [10, 20, 30, 36]], np.float32)
    rings = [[], [np.array([[2, 2], [14, 2], [14, 14]]), np.array([[20, 20], [38, 20], [38, 38], [20, 38]])],
             [np.array([[10, 20], [30, 20], [30, 36], [10, 36]])]]
    polygons = Polygons.from_rings(rings)
    masks = instance_masks(polygons, boxes, (40, 48), 4)
    assert masks.shape == (3, 10, 12) and masks.dtype == np.uint8
    box_ring = boxes[0][[0, 1, 2, 1, 2, 3, 0, 3]].reshape(4, 2)
    np.testing.assert_array_equal(masks[0], polygon_masks([box_ring], (40, 48), 4)[0])
    np.testing.assert_array_equal(masks[2], polygon_masks(rings[2], (40, 48), 4)[0])
    full = polygon_masks(rings[1], (40, 48)).max(0)
    np.testing.assert_array_equal(masks[1], cv2.resize(full, (12, 10)))
    overlap, order = mask_targets(polygons, boxes, (40, 48), 4, overlap=True)
    areas = masks.sum((1, 2))
    assert areas[order].tolist() == sorted(areas, reverse=True)
    for k, j in enumerate(order):  # each instance shows where no later (smaller) one covers it
        later = masks[order[k + 1:]].any(0)
        np.testing.assert_array_equal(overlap == k + 1, masks[j].astype(bool) & ~later)


@pytest.mark.parametrize("ratio", [1, 4])
def test_mask_targets_equal_the_official_rasteriser(official_seg_dir, ratio):
    """`polygons.pt`: a polygon partly outside the image and one that vanishes at ratio 4 (which sorts first)."""
    reference = torch.load(official_seg_dir / "polygons.pt", weights_only=True)
    polygons = Polygons.from_rings([[reference[f"polygon_{k}"].numpy()] for k in range(4)])
    shape = reference["img_size"].tolist()
    boxes = polygons.boxes(np.zeros((4, 4)))
    masks, order = mask_targets(polygons, boxes, shape, ratio, overlap=False)
    np.testing.assert_array_equal(masks, reference[f"masks_ds{ratio}"].numpy())
    assert order.tolist() == [0, 1, 2, 3]
    merged, order = mask_targets(polygons, boxes, shape, ratio, overlap=True)
    np.testing.assert_array_equal(merged, reference[f"masks_overlap_ds{ratio}"].numpy())
    assert order.tolist() == reference[f"overlap_sorted_idx_ds{ratio}"].tolist()


@pytest.mark.parametrize("overlap", [False, True])
def test_val_batches_equal_the_official_dataloader(official_seg_dir, tmp_path, overlap):
    io = torch.load(official_seg_dir / "gelan-c-seg-mini.io.pt", weights_only=True)
    official = torch.load(official_seg_dir / "gelan-c-seg-mini.loss.pt", weights_only=True)
    text = json.loads((official_seg_dir / "gelan-c-seg-mini.json").read_text())["dataset"]["label_file_text"]
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    image = io["input_uint8"][0].permute(1, 2, 0).numpy()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    (tmp_path / "labels" / "a.txt").write_text(text)
    cfg = {"path": tmp_path, "train": [], "val": [tmp_path / "images" / "a.png"], "test": [],
           "names": ["cat", "dog", "bird"], "nc": 3, "coco": {"val": []}}
    batch = next(iter(build_val_loader(cfg, imgsz=256, batch=1, workers=0, rect=False, masks=True,
                                       overlap=overlap)))
    suffix = "_overlap" if overlap else ""
    assert torch.equal(batch["images"], io["input_uint8"])
    assert batch["masks"].dtype == torch.uint8 and torch.equal(batch["masks"], official["masks" + suffix])
    # the official boxes are clipped to [0, 256 - 1e-3] (xyxy2xywhn eps); ours to [0, 256]
    xyxy = torch.cat((batch["targets"][:, 2:4] - batch["targets"][:, 4:] / 2,
                      batch["targets"][:, 2:4] + batch["targets"][:, 4:] / 2), 1).clamp(0, 1 - 1e-3 / 256)
    ours = torch.cat((batch["targets"][:, :2], (xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]), 1)
    torch.testing.assert_close(ours, official["targets" + suffix], atol=2e-7, rtol=0)
    order = [0, 4, 2, 3, 1] if overlap else range(5)
    for k, j in enumerate(order):
        np.testing.assert_allclose(batch["segments"][0][k][0], official[f"segment_px_{j}"].numpy(), atol=1e-4)


def test_loader_mask_batches(shapes):
    plain = next(iter(build_val_loader(shapes, imgsz=128, batch=3, workers=0)))
    with_masks = next(iter(build_val_loader(shapes, imgsz=128, batch=3, workers=0, masks=True, overlap=False)))
    assert set(plain) == {"images", "targets", "paths", "letterboxes"}
    assert torch.equal(plain["images"], with_masks["images"]) and torch.equal(plain["targets"], with_masks["targets"])
    h, w = with_masks["images"].shape[2:]
    assert with_masks["masks"].shape == (len(with_masks["targets"]), h // 4, w // 4)
    for i, rows in enumerate(with_masks["segments"]):
        box = with_masks["letterboxes"][i]
        targets = with_masks["targets"][with_masks["targets"][:, 0] == i]
        assert len(rows) == len(targets) and all(len(r) == 1 for r in rows)
        for rings, target in zip(rows, targets):  # original pixels -> canvas: the row's box
            points = box.points_to_canvas(rings[0]) / (w, h)
            np.testing.assert_allclose((points.min(0) + points.max(0)) / 2, target[2:4], atol=1e-5)


def assert_inside_boxes(masks: torch.Tensor, targets: torch.Tensor) -> None:
    """Every set pixel (x, y) of each mask (n, h, w) lies inside its target's box (n, 6 normalised) + 1 px."""
    h, w = masks.shape[1:]
    for mask, target in zip(masks, targets):
        ys, xs = torch.nonzero(mask, as_tuple=True)
        cx, cy, bw, bh = (target[2:] * torch.tensor([w, h, w, h])).tolist()
        assert len(xs) and xs.min() >= cx - bw / 2 - 1 and xs.max() + 1 <= cx + bw / 2 + 1
        assert ys.min() >= cy - bh / 2 - 1 and ys.max() + 1 <= cy + bh / 2 + 1


def test_train_mask_batches_follow_their_targets(shapes):
    hyp = {"copy_paste": 0.5, "degrees": 10.0, "mixup": 0.5}
    plain = next(iter(build_train_loader(shapes, 96, 4, hyp=hyp, workers=0, seed=4)))
    separate = next(iter(build_train_loader(shapes, 96, 4, hyp=hyp, workers=0, seed=4, masks=True, overlap=False)))
    assert torch.equal(plain["images"], separate["images"]) and torch.equal(plain["targets"], separate["targets"])
    assert separate["masks"].shape == (len(separate["targets"]), 24, 24)
    assert_inside_boxes(separate["masks"], separate["targets"])
    merged = next(iter(build_train_loader(shapes, 96, 4, hyp=hyp, workers=0, seed=4, masks=True, mask_ratio=2)))
    assert merged["masks"].shape == (4, 48, 48) and merged["masks"].dtype == torch.uint8
    counts = torch.bincount(merged["targets"][:, 0].long(), minlength=4)
    assert [len(rows) for rows in merged["segments"]] == counts.tolist()
    for i, image_map in enumerate(merged["masks"]):
        rows = merged["targets"][merged["targets"][:, 0] == i]
        assert image_map.max() <= len(rows)
        shown = [k for k in range(len(rows)) if (image_map == k + 1).any()]
        assert_inside_boxes(torch.stack([image_map == k + 1 for k in shown]), rows[shown])
