"""Predictor: sources, letterbox inverse mapping, annotated outputs, Results, CLI `detect`."""
from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
from torch import nn

from deploy_helpers import tiny_model
from yolov9 import YOLOv9
from yolov9.cli import main
from yolov9.engine.predictor import predict
from yolov9.engine.sources import load_source

BACKGROUND = 114
IMGSZ = 96


class BrightBoxDetector(nn.Module):
    """A 'detector' whose answer we know: the bounding box of bright pixels, class 1, confidence 0.9.

    Output (B, 4 + 2, 1): xywh in input pixels (pixel edges, so a box over columns x0..x1 has width x1-x0+1).
    """

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        bright = (images.min(1).values > 0.9).float()  # (B, H, W)
        h, w = images.shape[2:]
        xs = torch.arange(w, dtype=torch.float32)
        ys = torch.arange(h, dtype=torch.float32)
        cols, rows = bright.amax(1), bright.amax(2)  # (B, W), (B, H)
        x1 = (xs + (1 - cols) * 1e4).amin(1)
        x2 = (xs - (1 - cols) * 1e4).amax(1) + 1
        y1 = (ys + (1 - rows) * 1e4).amin(1)
        y2 = (ys - (1 - rows) * 1e4).amax(1) + 1
        box = torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), 1)
        scores = torch.stack((torch.full_like(x1, 0.05), torch.full_like(x1, 0.9)), 1)
        return torch.cat((box, scores), 1)[..., None]


@pytest.fixture(scope="module")
def bright_box_onnx(tmp_path_factory) -> Path:
    """BrightBoxDetector as a fixed-shape 96x96 ONNX model with our metadata (names, stride, imgsz)."""
    buffer = io.BytesIO()
    torch.onnx.export(BrightBoxDetector(), (torch.zeros(1, 3, IMGSZ, IMGSZ),), buffer, opset_version=17,
                      input_names=["images"], output_names=["output"], dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    for key, value in {"names": json.dumps(["cat", "box"]), "stride": "32", "nms": "false",
                       "imgsz": json.dumps([IMGSZ, IMGSZ])}.items():
        proto.metadata_props.add(key=key, value=value)
    path = tmp_path_factory.mktemp("onnx") / "bright_box.onnx"
    onnx.save(proto, str(path))
    return path


def image_with_box(h: int, w: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """Gray (letterbox-coloured) BGR image with a white rectangle over pixels x1..x2-1, y1..y2-1."""
    image = np.full((h, w, 3), BACKGROUND, np.uint8)
    x1, y1, x2, y2 = box
    image[y1:y2, x1:x2] = 255
    return image


@pytest.mark.parametrize("shape, box", [((300, 200), (40, 60, 120, 250)), ((150, 400), (10, 20, 390, 140)),
                                        ((96, 96), (0, 0, 30, 96))])
def test_results_boxes_are_in_original_pixels(bright_box_onnx, shape, box):
    result = predict(bright_box_onnx, image_with_box(*shape, box), progress=False)[0]
    assert result.names == ["cat", "box"] and result.orig_shape == shape
    assert result.boxes.cls.tolist() == [1] and result.boxes.conf == pytest.approx([0.9])
    scale = max(shape) / IMGSZ  # one letterboxed pixel, in original pixels
    np.testing.assert_allclose(result.boxes.xyxy[0], box, atol=scale + 0.5)


def write_images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        paths.append(folder / f"img{i}.jpg")
        cv2.imwrite(str(paths[-1]), image_with_box(120 + 10 * i, 160, (20 + i, 30, 90, 100)))
    return paths


def write_video(path: Path, frames: int, size=(128, 96)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, size)
    for i in range(frames):
        writer.write(image_with_box(size[1], size[0], (10 + 5 * i, 10, 60 + 5 * i, 70)))
    writer.release()
    return path


def test_folder_and_video_give_annotated_outputs(bright_box_onnx, tmp_path):
    write_images(tmp_path / "images", 3)
    write_video(tmp_path / "images" / "clip.avi", 4)
    out = tmp_path / "out"
    results = predict(bright_box_onnx, tmp_path / "images", save_dir=out, save_txt=True, save_json=True,
                      save_crop=True, progress=False)
    assert len(results) == 3 + 4
    assert [r.frame for r in results if r.frame is not None] == [0, 1, 2, 3]
    for i in range(3):
        annotated = cv2.imread(str(out / f"img{i}.jpg"))
        assert annotated.shape == (120 + 10 * i, 160, 3)
        assert not np.array_equal(annotated, cv2.imread(str(tmp_path / "images" / f"img{i}.jpg")))
        assert (out / "labels" / f"img{i}.txt").read_text().startswith("1 ")
    video = cv2.VideoCapture(str(out / "clip.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    video.release()
    coco = json.loads((out / "predictions.json").read_text())
    assert len(coco) == 7 and all(d["category_id"] == 1 for d in coco)
    assert len(list((out / "crops" / "box").iterdir())) == 7
    image0 = next(r for r in results if r.path.endswith("img0.jpg"))
    first = json.loads(image0.to_json())[0]
    assert first["name"] == "box" and first["box"] == pytest.approx([20, 30, 90, 100], abs=2)
    assert image0.plot().shape == image0.orig_img.shape


def test_sources_glob_list_and_arrays(tmp_path):
    paths = write_images(tmp_path / "a", 3)
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(p) for p in paths[:2]) + "\n")
    assert len(load_source(str(tmp_path / "a" / "*.jpg"))) == 3
    assert [f.path for f in load_source(listing)] == [str(p) for p in paths[:2]]
    assert len(load_source([np.zeros((8, 8, 3), np.uint8), paths[0]])) == 2


def test_pytorch_model_batches(tmp_path):
    model = tiny_model("gelan-t", nc=2)
    write_images(tmp_path / "images", 3)
    one = YOLOv9(model).predict(tmp_path / "images", imgsz=64, conf=0.0, max_det=5, progress=False)
    batched = predict(model, tmp_path / "images", imgsz=64, conf=0.0, max_det=5, batch=2, progress=False)
    for a, b in zip(one, batched):
        assert len(a) == 5 and a.names == ["class0", "class1"]
        np.testing.assert_allclose(a.boxes.xyxy, b.boxes.xyxy, atol=1e-3)
        assert (a.boxes.xyxy[:, 2:] <= np.array(a.orig_shape[::-1])).all()


def test_cli_detect(bright_box_onnx, tmp_path):
    write_images(tmp_path / "images", 2)
    args = ["detect", "--weights", str(bright_box_onnx), "--source", str(tmp_path / "images"),
            "--project", str(tmp_path / "runs"), "--save-txt"]
    assert main(args) == 0 and main(args) == 0
    assert sorted(p.name for p in (tmp_path / "runs" / "exp").glob("*.jpg")) == ["img0.jpg", "img1.jpg"]
    assert sorted(p.name for p in (tmp_path / "runs" / "exp2" / "labels").iterdir()) == ["img0.txt", "img1.txt"]


def test_torch_backend_is_channels_last_and_matches_the_fused_model():
    """The CPU backend runs NHWC (faster oneDNN convolutions) and gives the stripped, fused model's output."""
    from yolov9 import strip_auxiliary
    from yolov9.runtime import TorchBackend

    model = tiny_model("yolov9-t", nc=3)
    backend = TorchBackend(model)
    images = torch.rand(2, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = strip_auxiliary(model).eval().fuse()(images)
    got = backend(images)
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in backend.model.parameters() if p.dim() == 4)
    assert model.branches == 2 and got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-3, rtol=1e-4)
