"""Label scan: every bad-input kind gives its exact report entry, and the good images of the split are still used."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from yolov9.data import build_val_loader, load_data_config
from yolov9.data.scan import cache_path, scan_split
from yolov9.errors import ConfigError, DatasetError


def write_image(path: Path, h: int = 48, w: int = 64) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.zeros((h, w, 3), np.uint8)
    image[10:30, 20:40] = (200, 100, 50)
    cv2.imwrite(str(path), image)


def split_with(tmp_path: Path, name: str, label: "str | None", writer=write_image) -> tuple[list[Path], Path]:
    """Two good images plus `name` with label text `label` (None: no label file)."""
    images = tmp_path / "images" / "train"
    files = []
    for i in range(2):
        files.append(images / f"good{i}.png")
        write_image(files[-1])
        (tmp_path / "labels" / "train").mkdir(parents=True, exist_ok=True)
        (tmp_path / "labels" / "train" / f"good{i}.txt").write_text("0 0.5 0.4 0.3 0.4\n")
    bad = images / name
    writer(bad)
    if label is not None:
        (tmp_path / "labels" / "train" / bad.name).with_suffix(".txt").write_text(label)
    return files + [bad], bad


def only_entry(result, level: str) -> tuple:
    entries = [p for p in result.problems if p.level == level]
    assert len(entries) == 1, result.problems
    return tuple(entries[0])


LABEL_CASES = [
    ("0 0.5 0.5 0.2 abc\n", "1", "error", "non-numeric value 'abc'"),
    ("0 0.5 0.5 0.2 0.2\n1 nan 0.5 0.2 0.2\n", "2", "error", "NaN or infinite value"),
    ("0 0.5 0.5 inf 0.2\n", "1", "error", "NaN or infinite value"),
    ("3 0.5 0.5 0.2 0.2\n", "1", "error", "class id 3 is not an integer in 0..2"),
    ("-1 0.5 0.5 0.2 0.2\n", "1", "error", "class id -1 is not an integer in 0..2"),
    ("0 0.5 0.5 0.2\n", "1", "error", "4 values; expected 5 (cls cx cy w h) or an odd number >= 7 (polygon)"),
    ("0 0.9 0.5 0.4 0.2\n", "1", "error", "box [0.7, 0.4, 1.1, 0.6] outside [0, 1] beyond tolerance 0.01"),
]


@pytest.mark.parametrize("text,line,level,message", LABEL_CASES)
def test_bad_label_row_skips_only_that_image(tmp_path, text, line, level, message):
    files, bad = split_with(tmp_path, "bad.png", text)
    result = scan_split(files, nc=3, use_cache=False)
    label_file = str(tmp_path / "labels" / "train" / "bad.txt")
    assert only_entry(result, level) == (label_file, line, level, message)
    assert sorted(Path(f).name for f in result.files) == ["good0.png", "good1.png"]
    assert result.skipped == 1


FIX_CASES = [
    ("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n", "2", "duplicate row; dropped", [[0, 0.5, 0.5, 0.2, 0.2]]),
    ("1 0.9 0.5 0.205 0.2\n", "1", "coordinates slightly outside [0, 1]; clipped", [[1, 0.8987, 0.5, 0.2025, 0.2]]),
    ("2 0.5 0.5 0.0 0.2\n0 0.5 0.5 0.2 0.2\n", "1", "zero-area box; row dropped", [[0, 0.5, 0.5, 0.2, 0.2]]),
]


@pytest.mark.parametrize("text,line,message,rows", FIX_CASES)
def test_repairable_label_rows_are_fixed_and_the_image_kept(tmp_path, text, line, message, rows):
    files, bad = split_with(tmp_path, "bad.png", text)
    result = scan_split(files, nc=3, use_cache=False)
    assert only_entry(result, "fixed") == (str(tmp_path / "labels" / "train" / "bad.txt"), line, "fixed", message)
    assert len(result) == 3
    labels, _ = result.image_labels(list(result.files).index(str(bad)))
    np.testing.assert_allclose(labels, rows, atol=1e-4)
    with pytest.raises(DatasetError, match="bad.txt:" + line):
        scan_split(files, nc=3, use_cache=False, strict=True)


def test_six_decimal_round_off_at_the_border_is_clipped_silently(tmp_path):
    files, bad = split_with(tmp_path, "edge.png", "0 0.974760 0.074519 0.050481 0.129808\n")  # x2 = 1.0000005
    result = scan_split(files, nc=3, use_cache=False, strict=True)
    labels, _ = result.image_labels(list(result.files).index(str(bad)))
    assert not result.problems
    assert labels[0, 1] + labels[0, 3] / 2 <= 1.0


def truncated_jpeg(path: Path) -> None:
    write_image(path.with_suffix(".tmp.jpg"))
    data = path.with_suffix(".tmp.jpg").read_bytes()
    path.with_suffix(".tmp.jpg").unlink()
    path.write_bytes(data[: len(data) - 200])


def truncated_png(path: Path) -> None:
    write_image(path)
    path.write_bytes(path.read_bytes()[:-40])


IMAGE_ERRORS = [
    ("trunc.jpg", truncated_jpeg, "truncated JPEG (no end-of-image marker)"),
    ("text.png", lambda p: p.write_text("not an image"), "unreadable or corrupt image"),
    ("trunc.png", truncated_png, "unreadable or corrupt image"),
    ("vector.svg", lambda p: p.write_text("<svg/>"), "unsupported image format '.svg'"),
]


@pytest.mark.parametrize("name,writer,message", IMAGE_ERRORS)
def test_bad_image_is_skipped_and_named(tmp_path, name, writer, message):
    files, bad = split_with(tmp_path, name, "0 0.5 0.5 0.2 0.2\n", writer)
    result = scan_split(files, nc=3, use_cache=False)
    file, line, level, text = only_entry(result, "error")
    assert (file, line, level) == (str(bad), "", "error") and text.startswith(message)
    assert len(result) == 2


def rgb_rectangle() -> Image.Image:
    array = np.zeros((40, 60, 3), np.uint8)
    array[5:15, 10:30] = (255, 0, 0)
    return Image.fromarray(array)


CONVERTED = [
    ("gray.png", lambda p: rgb_rectangle().convert("L").save(p), "grayscale image; converted to RGB"),
    ("rgba.png", lambda p: rgb_rectangle().convert("RGBA").save(p), "RGBA image; alpha channel dropped"),
    ("cmyk.jpg", lambda p: rgb_rectangle().convert("CMYK").save(p, quality=98), "CMYK image; converted to RGB"),
    ("deep.png", lambda p: Image.fromarray((np.asarray(rgb_rectangle().convert("L"), np.uint16) * 257)).save(p),
     "16-bit image; converted to 8-bit"),
]


@pytest.mark.parametrize("name,writer,message", CONVERTED)
def test_unusual_pixel_formats_are_converted_not_rejected(tmp_path, name, writer, message):
    files, bad = split_with(tmp_path, name, "0 0.3333 0.25 0.3333 0.25\n", writer)
    result = scan_split(files, nc=3, use_cache=False)
    assert only_entry(result, "note") == (str(bad), "", "note", message)
    loader = build_val_loader({"path": tmp_path, "train": [], "val": [str(f) for f in files], "test": [],
                               "names": ["a", "b", "c"], "nc": 3, "coco": {"val": []}}, imgsz=64, batch=1, workers=0)
    batch = next(b for b in loader if b["paths"][0] == str(bad))
    (gain_h, gain_w), (left, top) = batch["letterboxes"][0].gain, batch["letterboxes"][0].pad
    image = batch["images"][0].permute(1, 2, 0).numpy()
    y, x = round(10 * gain_h + top), round(20 * gain_w + left)  # inside the rectangle
    by, bx = round(35 * gain_h + top), round(50 * gain_w + left)  # background
    assert image[y, x].max() > 40 and image[by, bx].max() < 20  # bright rectangle (any conversion), dark background
    if name != "gray.png" and name != "deep.png":
        assert image[y, x, 0] > 200 and image[y, x, 1] < 60  # still red in RGB order


def test_exif_orientation_is_applied(tmp_path):
    def writer(path):
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90 degrees clockwise to display
        rgb_rectangle().save(path, exif=exif.tobytes(), quality=98)

    files, bad = split_with(tmp_path, "rotated.jpg", "0 0.5 0.5 0.2 0.2\n", writer)
    result = scan_split(files, nc=3, use_cache=False)
    assert only_entry(result, "note") == (str(bad), "", "note", "EXIF orientation 6 applied")
    i = list(result.files).index(str(bad))
    assert tuple(result.shapes[i]) == (60, 40)
    from yolov9.data.transforms import read_image
    image = read_image(bad)
    assert image.shape[:2] == (60, 40)
    # stored rows 5:15, cols 10:30 of a 40x60 image; after 90 degrees clockwise: rows 10:30, cols 25:35
    assert image[20, 30, 0] > 200 and image[20, 5].max() < 30


def test_missing_label_file_is_a_background_image(tmp_path):
    files, bad = split_with(tmp_path, "nolabel.png", None)
    result = scan_split(files, nc=3, use_cache=False)
    label_file = str(tmp_path / "labels" / "train" / "nolabel.txt")
    assert only_entry(result, "note") == (label_file, "", "note", "no label file; used as a background image")
    i = list(result.files).index(str(bad))
    assert result.offsets[i + 1] == result.offsets[i] and len(result) == 3


def test_empty_split_and_missing_names(tmp_path):
    (tmp_path / "images" / "val").mkdir(parents=True)
    (tmp_path / "a.yaml").write_text("path: .\ntrain: images/val\nval: images/val\nnames: [x]\n")
    with pytest.raises(DatasetError, match="val: empty split"):
        build_val_loader(tmp_path / "a.yaml", workers=0)
    (tmp_path / "b.yaml").write_text("path: .\ntrain: images/val\nval: images/val\n")
    with pytest.raises(ConfigError, match=r"b.yaml: missing key 'names'"):
        load_data_config(tmp_path / "b.yaml")


def test_cache_is_reused_invalidated_and_rebuilt(tmp_path):
    files, bad = split_with(tmp_path, "third.png", "0 0.5 0.5 0.2 0.2\n")
    first = scan_split(files, nc=3)
    cache = cache_path(files, [])
    assert cache == tmp_path / "labels" / "train.cache" and cache.is_file() and not first.from_cache
    assert scan_split(files, nc=3).from_cache
    label = tmp_path / "labels" / "train" / "third.txt"
    label.write_text("1 0.5 0.5 0.2 0.2\n")
    os.utime(label, ns=(1, 1))  # a new mtime even on coarse file systems
    changed = scan_split(files, nc=3)
    assert not changed.from_cache and changed.labels[:, 0].tolist() == [0, 0, 1]
    assert not scan_split(files[:2], nc=3).from_cache  # another file list
    cache.write_bytes(b"garbage")
    rebuilt = scan_split(files, nc=3)
    assert not rebuilt.from_cache and len(rebuilt) == 3
    assert scan_split(files, nc=3).from_cache
