"""Dataset builders: tiling/clipping of VOC boxes, the committed "trees" folder, the digits-on-photos generator."""
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

from yolov9.cli import main
from yolov9.data import load_data_config
from yolov9.datasets import build_trees, generate_digits
from yolov9.datasets.digits import paste_digit, split_indices
from yolov9.datasets.tiling import tile_origins
from yolov9.datasets.voc import parse_voc
from yolov9.errors import DatasetError

REPO = Path(__file__).resolve().parents[1]
TREES = REPO / "datasets" / "trees"
TILE_NAME = re.compile(r"^(?P<stem>.+)_x(?P<x>\d+)_y(?P<y>\d+)$")


def voc_xml(width: int, height: int, boxes: np.ndarray) -> str:
    """A VOC document with 1-based inclusive corners, as labelling tools write them."""
    objects = "".join(f"<object><name>Tree</name><bndbox><xmin>{x1 + 1}</xmin><ymin>{y1 + 1}</ymin>"
                      f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>" for x1, y1, x2, y2 in boxes)
    size = f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"
    return f"<annotation>{size}{objects}</annotation>"


def random_boxes(rng: np.random.Generator, width: int, height: int, n: int, largest: int) -> np.ndarray:
    sides = rng.integers(6, largest + 1, size=(n, 2))
    corners = np.stack([rng.integers(0, width - sides[:, 0]), rng.integers(0, height - sides[:, 1])], axis=1)
    return np.concatenate([corners, corners + sides], axis=1)


@pytest.fixture(scope="module")
def synthetic_source(tmp_path_factory) -> dict:
    """Two textured images with VOC xml and a LICENSE, laid out like deepforest's data folder."""
    root = tmp_path_factory.mktemp("source")
    rng = np.random.default_rng(7)
    images = {"big": (300, 260, 60), "small": (120, 100, 12)}
    truth = {}
    for stem, (width, height, n) in images.items():
        boxes = random_boxes(rng, width, height, n, largest=40)
        image = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (0, 0), 3)
        cv2.imwrite(str(root / f"{stem}.png"), image)
        (root / f"{stem}.xml").write_text(voc_xml(width, height, boxes))
        truth[stem] = (image, boxes.astype(np.float64))
    (root / "LICENSE").write_text("MIT License\n\nsynthetic test data\n")
    return {"root": root, "truth": truth}


def read_labels(path: Path) -> np.ndarray:
    rows = [line.split() for line in path.read_text().splitlines()]
    assert all(len(row) == 5 for row in rows), path
    return np.asarray(rows, dtype=np.float64).reshape(-1, 5)


def assert_inside(boxes: np.ndarray, width: int, height: int) -> None:
    limits = np.array([width, height, width, height]) + 1e-3
    assert (boxes >= -1e-3).all() and (boxes <= limits).all()


def built_files(root: Path) -> list:
    """Relative paths of the images and label files under a dataset folder."""
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.suffix in {".txt", ".jpg"})


def expected_boxes(boxes: np.ndarray, window: tuple) -> list:
    """The clipping rule written out box by box: keep if >= 40 % of the area and >= 4 px per side remain."""
    x0, y0, x1, y1 = window
    kept = []
    for bx1, by1, bx2, by2 in boxes:
        cx1, cy1, cx2, cy2 = max(bx1, x0), max(by1, y0), min(bx2, x1), min(by2, y1)
        w, h = cx2 - cx1, cy2 - cy1
        if w >= 4 and h >= 4 and w * h >= 0.4 * (bx2 - bx1) * (by2 - by1):
            kept.append((cx1 - x0, cy1 - y0, cx2 - x0, cy2 - y0))
    return sorted(kept)


def label_boxes(labels: np.ndarray, width: int, height: int) -> np.ndarray:
    cx, cy, w, h = labels[:, 1] * width, labels[:, 2] * height, labels[:, 3] * width, labels[:, 4] * height
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


@pytest.mark.parametrize("length,tile,overlap", [(300, 128, 48), (1035, 416, 112), (2472, 416, 112), (128, 128, 48),
                                                 (100, 128, 48), (129, 128, 48)])
def test_tile_origins_cover_the_image_with_the_overlap(length, tile, overlap):
    starts = tile_origins(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + min(tile, length) == length
    gaps = np.diff(starts)
    assert (tile - gaps >= overlap).all()


def test_build_trees_from_folder_matches_the_clipping_rule(synthetic_source, tmp_path):
    splits = {"big": "train", "small": "val"}
    summary = build_trees(tmp_path / "out", source=synthetic_source["root"], tile=128, overlap=48, splits=splits)
    out = tmp_path / "out"
    for split in ("train", "val"):
        tiles = sorted((out / "labels" / split).glob("*.txt"))
        assert len(tiles) == summary[split]["images"] == len(list((out / "images" / split).glob("*.jpg")))
        assert sum(len(read_labels(p)) for p in tiles) == summary[split]["boxes"]
    whole_somewhere = {stem: np.zeros(len(boxes), dtype=bool) for stem, (_, boxes) in synthetic_source["truth"].items()}
    for label_file in sorted((out / "labels").glob("*/*.txt")):
        split = label_file.parent.name
        match = TILE_NAME.match(label_file.stem)
        stem, x, y = match["stem"], int(match["x"]), int(match["y"])
        assert splits[stem] == split
        source_image, source_boxes = synthetic_source["truth"][stem]
        tile = cv2.imread(str(out / "images" / split / f"{label_file.stem}.jpg"))
        height, width = tile.shape[:2]
        assert np.abs(tile.astype(int) - source_image[y:y + height, x:x + width]).mean() < 3
        labels = read_labels(label_file)
        assert (labels[:, 0] == 0).all() and (labels[:, 1:] >= 0).all() and (labels[:, 1:] <= 1).all()
        boxes = label_boxes(labels, width, height)
        assert_inside(boxes, width, height)
        expected = expected_boxes(source_boxes, (x, y, x + width, y + height))
        np.testing.assert_allclose(np.array(sorted(map(tuple, boxes.round(1)))).reshape(-1, 4),
                                   np.array(expected).reshape(-1, 4), atol=1e-3 * max(width, height))
        inside = ((source_boxes[:, 0] >= x) & (source_boxes[:, 1] >= y)
                  & (source_boxes[:, 2] <= x + width) & (source_boxes[:, 3] <= y + height))
        whole_somewhere[stem] |= inside
    assert all(found.all() for found in whole_somewhere.values()), "a box smaller than the overlap was lost"
    config = yaml.safe_load((out / "trees.yaml").read_text())
    assert config["path"] == "." and config["train"] == "images/train" and config["names"] == {0: "tree"}
    assert (out / "LICENSE").read_text().startswith("MIT License")


def test_build_trees_from_wheel_equals_build_from_folder(synthetic_source, tmp_path):
    wheel = tmp_path / "deepforest-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path in sorted(synthetic_source["root"].iterdir()):
            member = f"deepforest/data/{path.name}"
            archive.write(path, "deepforest-0.dist-info/licenses/LICENSE" if path.name == "LICENSE" else member)
    splits = {"big": "train", "small": "val"}
    build_trees(tmp_path / "a", source=wheel, tile=128, overlap=48, splits=splits)
    build_trees(tmp_path / "b", source=synthetic_source["root"], tile=128, overlap=48, splits=splits)
    files_a = built_files(tmp_path / "a")
    assert files_a and files_a == built_files(tmp_path / "b")
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files_a)
    with pytest.raises(DatasetError, match="overwrite"):
        build_trees(tmp_path / "a", source=wheel, tile=128, overlap=48, splits=splits)


def test_missing_deepforest_names_the_download_command(tmp_path, monkeypatch, capsys):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "deepforest" else real_find_spec(name, *a))
    with pytest.raises(DatasetError, match="pip download --no-deps deepforest==2.1.0"):
        build_trees(tmp_path / "out")
    assert main(["dataset", "trees", "--out", str(tmp_path / "out")]) == 2
    assert "pip download" in capsys.readouterr().err


def test_voc_errors_name_the_file():
    with pytest.raises(DatasetError, match="a.xml: not valid xml"):
        parse_voc("<annotation>", source="a.xml")
    with pytest.raises(DatasetError, match="b.xml: object 1 has an empty box"):
        parse_voc(voc_xml(50, 50, np.array([[10, 10, 10, 20]])), source="b.xml")
    assert parse_voc(voc_xml(50, 50, np.array([[0, 0, 50, 50]]))).boxes.tolist() == [[0, 0, 50, 50]]


def readme_counts(folder: Path) -> dict:
    """Per split (images, objects): the first two numbers of each split's row in a bundled dataset's README table."""
    rows = re.findall(r"^\| (train|val) \| (\d+) \| (\d+) \|", (folder / "README.md").read_text(), re.M)
    return {split: (int(images), int(objects)) for split, images, objects in rows}


def test_committed_trees_match_their_readme_and_are_valid():
    counts = readme_counts(TREES)
    assert set(counts) == {"train", "val"}
    sources = {}
    for split, (n_images, n_boxes) in counts.items():
        labels = sorted((TREES / "labels" / split).glob("*.txt"))
        images = sorted((TREES / "images" / split).glob("*.jpg"))
        assert [p.stem for p in labels] == [p.stem for p in images] and len(images) == n_images
        total = 0
        for label_file, image_file in zip(labels, images):
            height, width = cv2.imread(str(image_file)).shape[:2]
            assert max(height, width) <= 416
            rows = read_labels(label_file)
            boxes = label_boxes(rows, width, height)
            assert (rows[:, 0] == 0).all()
            assert_inside(boxes, width, height)
            assert ((boxes[:, 2:] - boxes[:, :2]) >= 4 - 1e-3).all()
            sources.setdefault(TILE_NAME.match(label_file.stem)["stem"], set()).add(split)
            total += len(rows)
        assert total == n_boxes
    assert all(len(splits) == 1 for splits in sources.values()), "a source image is shared between splits"
    assert_bundle(TREES / "trees.yaml", ["tree"], "MIT License", 15e6)


def assert_bundle(data_yaml: Path, names: list, licence: str, max_bytes: float) -> None:
    """A bundled dataset's YAML (relative `path`, its splits as many images as its README says), licence and size."""
    folder, counts = data_yaml.parent, readme_counts(data_yaml.parent)
    config = yaml.safe_load(data_yaml.read_text())
    assert config["path"] == "." and config["train"] == "images/train" and config["val"] == "images/val"
    loaded = load_data_config(data_yaml)
    assert loaded["names"] == names
    assert [len(loaded[split]) for split in ("train", "val")] == [counts["train"][0], counts["val"][0]]
    assert licence in (folder / "LICENSE").read_text()
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) < max_bytes


def test_committed_trees_rebuild_identically(tmp_path):
    """Needs deepforest 2.1.0's wheel (YOLOV9_DEEPFOREST_SOURCE) or the installed package."""
    source = os.environ.get("YOLOV9_DEEPFOREST_SOURCE")
    if source is None and importlib.util.find_spec("deepforest") is None:
        pytest.skip("set YOLOV9_DEEPFOREST_SOURCE to deepforest-2.1.0-py3-none-any.whl to compare a rebuild")
    build_trees(tmp_path / "trees", source=source)
    committed = built_files(TREES)
    assert committed == built_files(tmp_path / "trees")
    assert all((TREES / f).read_bytes() == (tmp_path / "trees" / f).read_bytes() for f in committed)


def test_digit_splits_are_disjoint_and_balanced():
    labels = np.repeat(np.arange(10), 50)
    train, val = split_indices(labels, "train"), split_indices(labels, "val")
    assert not set(train) & set(val) and len(train) + len(val) == 500
    assert (np.bincount(labels[val], minlength=10) == 10).all()


def test_pasted_digit_box_and_ink_are_the_pixels_that_moved():
    """On a flat grey canvas, the ink must be the pixels that moved >= half-way to the ink colour, the box their
    bounding box."""
    glyph = np.zeros((28, 28), dtype=np.uint8)
    glyph[6:20, 9:16] = 255
    for seed in range(5):
        canvas = np.full((160, 160, 3), 128, dtype=np.uint8)
        pasted = paste_digit(np.random.default_rng(seed), canvas, glyph, [])
        change = np.abs(canvas.astype(int) - 128).max(axis=2)
        moved = change >= change.max() / 2
        rows, cols = np.nonzero(moved)
        np.testing.assert_allclose(pasted.box, [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], atol=1)
        x, y = pasted.origin
        ink = np.zeros_like(moved)
        ink[y:y + pasted.ink.shape[0], x:x + pasted.ink.shape[1]] = pasted.ink
        assert (ink != moved).sum() <= 0.1 * moved.sum()


def test_digits_generator_is_deterministic_with_ten_classes(tmp_path):
    summary = generate_digits(tmp_path / "a", n_train=24, n_val=8, seed=3, imgsz=160)
    generate_digits(tmp_path / "b", n_train=24, n_val=8, seed=3, imgsz=160)
    generate_digits(tmp_path / "c", n_train=24, n_val=8, seed=4, imgsz=160)
    files = built_files(tmp_path / "a")
    assert len(files) == 2 * (24 + 8)
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    images = [f for f in files if f.suffix == ".jpg"]
    assert any((tmp_path / "a" / f).read_bytes() != (tmp_path / "c" / f).read_bytes() for f in images)
    classes = []
    for label_file in (tmp_path / "a" / "labels").glob("*/*.txt"):
        rows = read_labels(label_file)
        boxes = label_boxes(rows, 160, 160)
        assert_inside(boxes, 160, 160)
        assert ((boxes[:, 2:] - boxes[:, :2]) > 0).all()
        classes.extend(rows[:, 0].astype(int))
    assert sorted(set(classes)) == list(range(10))
    assert len(classes) == summary["train"]["boxes"] + summary["val"]["boxes"]
    assert yaml.safe_load((tmp_path / "a" / "data.yaml").read_text())["names"] == {i: str(i) for i in range(10)}


def test_dataset_command_generates_digits(tmp_path, capsys):
    argv = ["dataset", "digits", "--out", str(tmp_path / "d"), "--n-train", "3", "--n-val", "2", "--imgsz", "96"]
    assert main(argv) == 0
    assert "train: 3 images" in capsys.readouterr().out
    assert len(list((tmp_path / "d" / "images" / "val").glob("*.jpg"))) == 2
