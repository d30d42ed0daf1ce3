"""The Results API: box forms, track ids, plot, save, save_txt, to_json, show without a display."""
from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest

from yolov9.errors import YOLOv9Error
from yolov9.tasks import Boxes, Results

H, W = 100, 200
DATA = np.array([[10, 20, 50, 60, 0.9, 1], [100, 0, 200, 100, 0.4, 0]], np.float32)


def result(data: np.ndarray = DATA, frame=None, trails=None) -> Results:
    image = np.full((H, W, 3), 114, np.uint8)
    return Results(image, "images/street.jpg", ["car", "person"], Boxes(data, (H, W)), frame, trails=trails)


def test_box_forms_and_ids():
    boxes = result().boxes
    np.testing.assert_allclose(boxes.xyxy, DATA[:, :4])
    np.testing.assert_allclose(boxes.xywh, [[30, 40, 40, 40], [150, 50, 100, 100]])
    np.testing.assert_allclose(boxes.xywhn, [[0.15, 0.4, 0.2, 0.4], [0.75, 0.5, 0.5, 1.0]])
    np.testing.assert_allclose(boxes.xyxyn, [[0.05, 0.2, 0.25, 0.6], [0.5, 0, 1, 1]])
    np.testing.assert_allclose(boxes.conf, [0.9, 0.4])
    assert boxes.cls.tolist() == [1, 0] and boxes.cls.dtype == np.int64
    assert boxes.id is None and len(boxes) == 2 and len(boxes[0]) == 1
    tracked = Boxes(np.c_[DATA, [7, 3]], (H, W))
    assert tracked.id.tolist() == [7, 3] and tracked[1].id.tolist() == [3]
    assert Boxes(np.zeros((0, 6)), (H, W)).xywhn.shape == (0, 4)


def test_json_txt_and_save(tmp_path, monkeypatch):
    r = result(np.c_[DATA, [7, 3]], trails=[np.array([[20, 30], [30, 40]], np.float32), np.zeros((1, 2))])
    rows = json.loads(r.to_json())
    assert [row["track_id"] for row in rows] == [7, 3] and rows[0]["name"] == "person"
    assert rows[0]["box"] == [10, 20, 50, 60] and rows[0]["confidence"] == pytest.approx(0.9)
    assert "track_id" not in json.loads(result().to_json())[0]
    r.save_txt(tmp_path / "labels" / "street.txt", with_confidence=True)
    first = (tmp_path / "labels" / "street.txt").read_text().splitlines()[0].split()
    assert first[0] == "1" and [float(v) for v in first[1:]] == pytest.approx([0.15, 0.4, 0.2, 0.4, 0.9], abs=1e-5)
    monkeypatch.chdir(tmp_path)
    assert r.save().name == "street.jpg" and cv2.imread("street.jpg").shape == (H, W, 3)
    assert result(frame=4).save().name == "street_4.jpg"
    assert r.save(tmp_path / "out.png").suffix == ".png"
    assert r.save(tmp_path / "out.unknown").suffix == ".jpg"  # no encoder for the suffix: JPEG
    plotted = r.plot()
    assert plotted.shape == (H, W, 3) and not np.array_equal(plotted, r.orig_img)
    assert not np.array_equal(plotted, result(np.c_[DATA, [1, 2]]).plot())  # colours follow the track id


def test_show_without_display_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(YOLOv9Error, match="no display"):
        result().show()
    if not re.search(r"GUI:\s+NONE", cv2.getBuildInformation()):
        pytest.skip("this OpenCV has GUI support (opencv-python, not the headless build)")
    monkeypatch.setenv("DISPLAY", ":99")  # a display, but no GUI in OpenCV
    with pytest.raises(YOLOv9Error, match="no GUI support"):
        result().show()
