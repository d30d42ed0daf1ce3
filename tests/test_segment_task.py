"""The segmentation task: post-processing and Results masks against the official fixtures, the mask evaluator
against pycocotools, the task's hooks (fitness, metric keys, loader options, batch plot, validation loss)."""
from __future__ import annotations

import contextlib
import io

import cv2
import numpy as np
import pytest
import torch
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from test_masks import assert_masks_close, unpack
from yolov9.eval.box_evaluator import BoxEvaluator, ground_truth
from yolov9.eval.mask_evaluator import (DetectionsOf, MaskEvaluator, SegmentPrediction, evaluation_masks,
                                       original_masks)
from yolov9.ops.boxes import normalize_boxes, xyxy2xywh
from yolov9.ops.letterbox import Letterbox
from yolov9.ops.masks import masks_to_original, process_mask_upsample
from yolov9.ops.rle import RunLengths
from yolov9.plots.drawing import class_colour
from yolov9.tasks import TASKS, Masks, task_of
from yolov9.tasks.segment import target_masks

MODELS = ["gelan-c-seg-mini", "yolov9-c-dseg-mini", "gelan-c-dseg-mini"]
TASK = TASKS["segment"]


@pytest.fixture(scope="module", params=MODELS)
def fixture(request, official_seg_dir):
    return torch.load(official_seg_dir / f"{request.param}.io.pt", weights_only=True)


def test_postprocess_gives_the_official_detections(fixture):
    output = (fixture["eval_pred"], fixture["eval_proto"])
    (plain,) = TASK.postprocess(output, 0.001, 0.7, 300)  # official predict.py style
    (val,) = TASK.postprocess(output, 0.001, 0.7, 300, multi_label=True)  # official val.py style
    torch.testing.assert_close(plain.detections, fixture["det"], atol=1e-5, rtol=0)
    torch.testing.assert_close(val.detections, fixture["det_val"], atol=1e-5, rtol=0)
    assert plain.prototypes is not None and torch.equal(plain.prototypes, fixture["eval_proto"][0])
    assert plain.input_shape == (256, 256)


def test_results_masks_equal_the_official_predict_masks(fixture):
    """An original image of the input's size (identity letterbox): Results.masks are the official
    process_mask(upsample=True) masks, one per box, in box order."""
    (prediction,) = TASK.postprocess((fixture["eval_pred"], fixture["eval_proto"]), 0.001, 0.7, 300)
    image = np.zeros((256, 256, 3), np.uint8)
    result = TASK.results(image, "x.png", None, prediction, Letterbox.fit((256, 256), 256), ["a", "b", "c"])
    assert isinstance(result.masks, Masks) and result.masks.data.dtype == bool
    assert len(result.masks) == len(result.boxes) == len(fixture["det"])
    assert_masks_close(torch.from_numpy(result.masks.data), unpack(fixture["masks_upsample_packbits"], 256))
    expected = torch.cat((fixture["det"][:, :4].clamp(0, 256), fixture["det"][:, 4:6]), 1)  # boxes clipped
    torch.testing.assert_close(torch.from_numpy(result.boxes.data), expected, atol=1e-4, rtol=0)


def test_evaluator_masks_equal_the_official_save_json_masks(fixture):
    """The evaluator's masks (upsample, crop, back to a 150 x 200 original) are official val --save-json's."""
    (prediction,) = TASK.postprocess((fixture["eval_pred"], fixture["eval_proto"]), 0.001, 0.7, 300, multi_label=True)
    first = SegmentPrediction(prediction.detections[:64], prediction.prototypes)
    masks = torch.from_numpy(evaluation_masks(first, Letterbox.fit((150, 200), 256)).to_masks())
    assert_masks_close(masks, unpack(fixture["masks_val_native_packbits"], 200))


def test_retina_masks_on_an_unscaled_image_are_upsampled_then_cropped(fixture):
    """With no letterbox scaling, native masks = prototypes upsampled to the image, cropped to the box: the
    official process_mask_upsample."""
    (prediction,) = TASK.postprocess((fixture["eval_pred"], fixture["eval_proto"]), 0.001, 0.7, 300, multi_label=True)
    first = SegmentPrediction(prediction.detections[:64], prediction.prototypes)
    native = original_masks(first, Letterbox.fit((256, 256), 256), "native")
    assert_masks_close(native, unpack(fixture["masks_val_crop_after_upsample_packbits"], 256))


def test_every_mask_mode_follows_the_letterbox():
    """A disk in prototype space, letterboxed from a 150 x 200 original: predict's, retina and the evaluator's
    masks are all the disk in original pixels (IoU > 0.95 with the analytic disk)."""
    letterbox = Letterbox.fit((150, 200), 256)  # gain 1.28, 32 px top and bottom
    yy, xx = torch.meshgrid(torch.arange(64) + 0.5, torch.arange(64) + 0.5, indexing="ij")
    disk = ((xx - 32) ** 2 + (yy - 30) ** 2 < 15 ** 2).float()
    prototypes = (disk * 40 - 20)[None]  # (1, 64, 64): logit +20 inside, -20 outside
    detections = torch.tensor([[0.0, 0.0, 256.0, 256.0, 0.9, 0.0, 1.0]])
    oy, ox = torch.meshgrid(torch.arange(150) + 0.5, torch.arange(200) + 0.5, indexing="ij")
    centre, radius = (32 * 4 / 1.28, (30 * 4 - 32) / 1.28), 15 * 4 / 1.28
    expected = (ox - centre[0]) ** 2 + (oy - centre[1]) ** 2 < radius ** 2
    prediction = SegmentPrediction(detections, prototypes)
    for mode in ("upsample", "native", "evaluation"):
        mask = (torch.from_numpy(evaluation_masks(prediction, letterbox).to_masks()) if mode == "evaluation"
                else original_masks(prediction, letterbox, mode))[0]
        assert mask.shape == (150, 200)
        assert (mask & expected).sum() / (mask | expected).sum() > 0.95, mode


@pytest.mark.parametrize("shape, canvas", [((150, 200), 256), ((300, 97), 128), ((61, 64), 64), ((40, 30), 96)])
def test_windowed_evaluation_masks_equal_whole_image_masks(shape, canvas):
    """The evaluator decodes each mask in its box's window; that equals, pixel for pixel, the whole-image path
    process_mask_upsample + masks_to_original (OpenCV resize), boxes reaching outside the image included."""
    generator = torch.Generator().manual_seed(canvas)
    n = 150
    corner = torch.rand(n, 2, generator=generator) * canvas * 0.9 - canvas * 0.05
    boxes = torch.cat((corner, corner + torch.rand(n, 2, generator=generator) * canvas * 0.5 + 0.3), 1)
    coefficients = torch.randn(n, 32, generator=generator)
    detections = torch.cat((boxes, torch.rand(n, 2, generator=generator), coefficients), 1)
    prototypes = torch.randn(32, canvas // 4, canvas // 4, generator=generator)
    letterbox = Letterbox.fit(shape, canvas)
    expected = masks_to_original(process_mask_upsample(prototypes, coefficients, boxes, (canvas, canvas)), letterbox)
    ours = evaluation_masks(SegmentPrediction(detections, prototypes), letterbox)
    assert expected.any() and torch.equal(torch.from_numpy(ours.to_masks()), expected)
    reference = RunLengths.from_masks(expected)
    assert np.array_equal(ours.starts, reference.starts) and np.array_equal(ours.offsets, reference.offsets)


def test_task_hooks():
    assert task_of(type("M", (), {"task": "segment"})()) is TASK
    assert TASK.table_groups == (("Box", ""), ("Mask", "mask/"))
    assert {"mask/precision", "mask/recall", "mask/mAP50", "mask/mAP50-95", "fitness"} <= set(TASK.metric_keys)
    metrics = {"mAP50": 0.5, "mAP50-95": 0.3, "mask/mAP50": 0.4, "mask/mAP50-95": 0.2}
    assert TASK.fitness(metrics) == pytest.approx(0.1 * 0.5 + 0.9 * 0.3 + 0.1 * 0.4 + 0.9 * 0.2)
    assert TASK.loader_options() == {"masks": True, "overlap": True, "mask_ratio": 4}
    assert TASK.loader_options(type("Options", (), {"overlap_mask": False})())["overlap"] is False
    batch = {"targets": torch.zeros(3, 6), "masks": torch.ones(1, 8, 8)}
    assert TASK.loss_arguments(batch) == (batch["targets"], batch["masks"])


def test_target_masks_of_overlap_maps_and_per_row_masks():
    """Overlap maps: value k + 1 = k-th row of that image; per-row masks pass through."""
    overlap = torch.zeros(2, 4, 4, dtype=torch.uint8)
    overlap[0, :2], overlap[0, 2:], overlap[1, :, :1] = 1, 2, 1
    targets = torch.tensor([[0, 0, .5, .5, 1, 1], [0, 1, .5, .5, 1, 1], [1, 0, .5, .5, 1, 1.]])
    rows = target_masks({"masks": overlap, "targets": targets, "images": torch.zeros(2, 3, 16, 16)})
    assert torch.equal(rows, torch.stack((overlap[0] == 1, overlap[0] == 2, overlap[1] == 1)))
    assert torch.equal(target_masks({"masks": rows.to(torch.uint8), "targets": targets,
                                     "images": torch.zeros(2, 3, 16, 16)}), rows)


# The mask evaluator against pycocotools on a generated case


def random_polygon(rng: np.random.Generator, centre: np.ndarray, radius: float) -> np.ndarray:
    """A star-shaped polygon (k, 2) around `centre`."""
    k = int(rng.integers(5, 10))
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    radii = radius * rng.uniform(0.5, 1.0, k)
    return (centre + np.stack((np.cos(angles), np.sin(angles)), 1) * radii[:, None]).astype(np.float32)


def generated_batches(seed: int, images: int = 12, per_batch: int = 4, nc: int = 3, canvas: int = 128):
    """Batches in the val loader's layout (images, targets, paths, letterboxes, segments) with GT polygons
    (some rows box-only) and SegmentPredictions of jittered copies of the GT and false positives."""
    rng = np.random.default_rng(seed)
    batches = []
    for start in range(0, images, per_batch):
        targets, letterboxes, segments, predictions = [], [], [], []
        for i in range(per_batch):
            shape = (int(rng.integers(60, 200)), int(rng.integers(60, 200)))
            letterbox = Letterbox.fit(shape, canvas)
            rows, outlines, classes = [], [], []
            for _ in range(int(rng.integers(0, 5))):
                radius = rng.uniform(8, min(shape) / 3)
                centre = rng.uniform(radius, np.array(shape[::-1]) - radius)
                polygon = random_polygon(rng, centre, radius)
                boxed = rng.random() < 0.2  # a box-only label row: its mask is the box
                x1, y1, x2, y2 = np.concatenate((polygon.min(0), polygon.max(0)))
                rows.append([] if boxed else [polygon])
                outlines.append(np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]]) if boxed else polygon)
                classes.append(int(rng.integers(0, nc)))
            canvas_outlines = [letterbox.points_to_canvas(o.astype(np.float64)) for o in outlines]
            canvas_boxes = np.array([np.concatenate((o.min(0), o.max(0))) for o in canvas_outlines]).reshape(-1, 4)
            xywh = normalize_boxes(xyxy2xywh(canvas_boxes), letterbox.canvas)
            targets += [[i, c, *b] for c, b in zip(classes, xywh)]
            segments.append(rows)
            letterboxes.append(letterbox)
            predictions.append(jittered_prediction(rng, canvas_outlines, classes, nc, canvas))
        batches.append(({"images": torch.zeros(per_batch, 3, canvas, canvas, dtype=torch.uint8),
                         "targets": torch.tensor(targets, dtype=torch.float32).reshape(-1, 6),
                         "paths": [f"{start + i}.jpg" for i in range(per_batch)], "letterboxes": letterboxes,
                         "segments": segments}, predictions))
    return batches


def jittered_prediction(rng: np.random.Generator, outlines: list, classes: list, nc: int, canvas: int
                        ) -> SegmentPrediction:
    """Per GT outline (canvas pixels) one or two detections of a jittered copy, plus one false positive square.
    Prototype channel k holds detection k's shape as +-20 logits; its coefficients are one-hot."""
    shapes, det_classes = [], []
    for outline, cls in zip(outlines, classes):
        for _ in range(int(rng.integers(1, 3))):
            shapes.append(outline * rng.normal(1, 0.03) + rng.normal(0, 1.5, (len(outline), 2)))
            det_classes.append(cls if rng.random() > 0.1 else int(rng.integers(0, nc)))
    centre = rng.uniform(10, canvas - 10, 2)
    shapes.append(centre + np.array([[-8, -8], [8, -8], [8, 8], [-8, 8]]))
    det_classes.append(int(rng.integers(0, nc)))
    size = canvas // 4
    prototypes = np.full((len(shapes), size, size), -20.0, np.float32)
    for channel, shape in zip(prototypes, shapes):  # sub-pixel fill at prototype resolution (4 fraction bits)
        cv2.fillPoly(channel, [np.round(shape / 4 * 16).astype(np.int32)], 20.0, shift=4)
    boxes = np.clip([np.concatenate((s.min(0), s.max(0))) for s in shapes], 0, canvas)
    scores = rng.uniform(0.05, 1.0, len(shapes)).round(3)  # some ties
    detections = np.concatenate((boxes, scores[:, None], np.array(det_classes)[:, None], np.eye(len(shapes))), 1)
    return SegmentPrediction(torch.from_numpy(detections.astype(np.float32)), torch.from_numpy(prototypes))


def ground_truth_json(batches, nc: int) -> dict:
    """COCO ground truth of the same label polygons, a box-only row as its box (the label's, in original pixels)
    as a polygon: pycocotools rasterises them for itself, as the evaluator has it do for us."""
    images, annotations = [], []
    for batch, _ in batches:
        for i, (letterbox, rows) in enumerate(zip(batch["letterboxes"], batch["segments"])):
            image_id = int(batch["paths"][i].split(".")[0])
            images.append({"id": image_id, "height": letterbox.shape[0], "width": letterbox.shape[1]})
            for row, (cls, x1, y1, x2, y2) in zip(rows, ground_truth(batch, i).tolist()):
                polygons = [p.ravel().tolist() for p in row] or [[x1, y1, x2, y1, x2, y2, x1, y2]]
                rle = coco_mask.merge(coco_mask.frPyObjects(polygons, letterbox.shape[0], letterbox.shape[1]))
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(cls),
                                    "segmentation": polygons, "area": float(coco_mask.area(rle)),
                                    "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": 0})
    return {"images": images, "annotations": annotations, "categories": [{"id": c} for c in range(nc)]}


def pycocotools_stats(gt: dict, rows: list, iou_type: str) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        evaluator = COCOeval(coco, coco.loadRes(rows), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


@pytest.mark.parametrize("seed", [0, 1])
def test_mask_evaluator_equals_pycocotools_on_its_json(seed):
    nc = 3
    batches = generated_batches(seed, nc=nc)
    names = [f"c{k}" for k in range(nc)]
    evaluators = [DetectionsOf(BoxEvaluator(names, 100, False)), MaskEvaluator(names, 100, save_json=True)]
    for evaluator in evaluators:
        evaluator.reset()
    for batch, predictions in batches:
        for evaluator in evaluators:
            evaluator.process(batch, predictions)
    metrics = {}
    for evaluator in evaluators:
        metrics.update(evaluator.evaluate())
    gt, rows = ground_truth_json(batches, nc), metrics["json_rows"]
    assert rows and all("segmentation" in r and isinstance(r["segmentation"]["counts"], str) for r in rows)
    segm, bbox = pycocotools_stats(gt, rows, "segm"), pycocotools_stats(gt, rows, "bbox")
    assert 0.1 < segm[0] < 0.9 and segm[0] != pytest.approx(bbox[0], abs=1e-3)  # masks are scored, not boxes
    assert metrics["mask/mAP50-95"] == pytest.approx(segm[0], abs=1e-6)
    assert metrics["mask/mAP50"] == pytest.approx(segm[1], abs=1e-6)
    assert metrics["mAP50-95"] == pytest.approx(bbox[0], abs=1e-6) and metrics["mAP50"] == pytest.approx(bbox[1], abs=1e-6)
    assert set(metrics["mask/per_class"]) == set(metrics["per_class"])
    assert 0 < metrics["mask/precision"] <= 1 and 0 < metrics["mask/recall"] <= 1


def test_batch_plot_shows_the_target_masks(tmp_path):
    """Overlap maps at 1/4 resolution -> each target's mask blended in its class colour on its tile."""
    images = torch.full((2, 3, 32, 32), 100, dtype=torch.uint8)
    targets = torch.tensor([[0, 0, .5, .5, 1, 1], [0, 1, .5, .5, 1, 1], [1, 1, .5, .5, 1, 1.]])
    overlap = torch.zeros(2, 8, 8, dtype=torch.uint8)
    overlap[0, 1:3, 1:3], overlap[0, 5:7, 5:7], overlap[1, 2:6, 2:6] = 1, 2, 1
    TASK.plot_batch({"images": images, "targets": targets, "masks": overlap}, tmp_path / "batch.png")
    grid = cv2.imread(str(tmp_path / "batch.png"))

    def blended(cls: int) -> np.ndarray:
        return np.round(0.5 * 100 + 0.5 * np.array(class_colour(cls))).astype(np.uint8)

    np.testing.assert_array_equal(grid[8, 8], blended(0))  # image 0, row 0 (class 0): mask cells 1..2
    np.testing.assert_array_equal(grid[24, 24], blended(1))  # image 0, row 1 (class 1)
    np.testing.assert_array_equal(grid[16, 32 + 16], blended(1))  # image 1 (second tile)
    np.testing.assert_array_equal(grid[16, 16], [100, 100, 100])  # no mask there
