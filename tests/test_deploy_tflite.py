"""TFLite / LiteRT: export (fp32, fp16 weights, INT8 with the head float; detection and segmentation) equal to
PyTorch in the LiteRT interpreter, NHWC input inside the backend, fixed shapes padded; the options it refuses.

A litert-torch conversion takes 35-45 s even for a tiny model, so the conversions are marked `slow_deploy` and run
by `make test-deploy` (with the `litert` extra), not by `make test`.
"""
from __future__ import annotations

import re

import cv2
import numpy as np
import pytest
import torch

from _train_data import write_dataset
from deploy_helpers import tiny_model
from yolov9.cli import main
from yolov9.engine.predictor import predict
from yolov9.errors import YOLOv9Error
from yolov9.export.exporter import Exporter
from yolov9.io.checkpoint import save_checkpoint
from yolov9.runtime import load_model


def assert_close_to_torch(got: torch.Tensor, expected: torch.Tensor, box_atol: float = 1e-2,
                          score_atol: float = 1e-3) -> None:
    """Boxes within `box_atol` px + 1e-3 relative, scores (and further rows) within `score_atol`."""
    torch.testing.assert_close(got[:, :4], expected[:, :4], atol=box_atol, rtol=1e-3)
    torch.testing.assert_close(got[:, 4:], expected[:, 4:], atol=score_atol, rtol=0)


@pytest.fixture(scope="module")
def litert():
    return pytest.importorskip("litert_torch")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data"), n_images=4, size=64)


@pytest.fixture(scope="module")
def gelan():
    return tiny_model("gelan-t", nc=2)


@pytest.fixture(scope="module")
def gelan_export(litert, gelan, dataset, tmp_path_factory) -> Exporter:
    """fp32 64x64 .tflite of a tiny gelan and its INT8 variant, both checked by the exporter."""
    exporter = Exporter(gelan, "tflite", imgsz=64, int8=True, data=dataset, calib_images=4, verbose=False,
                        file=tmp_path_factory.mktemp("gelan") / "gelan.tflite")
    exporter.run()
    return exporter


@pytest.mark.slow_deploy
def test_fp32_matches_pytorch_with_nhwc_input_and_metadata(gelan, gelan_export):
    check = gelan_export.check
    assert check["max_abs_diff_boxes"] < 1e-2 and check["max_abs_diff_scores"] < 1e-3
    backend = load_model(gelan_export.file)
    detail = backend.input_detail
    assert backend.format == "tflite" and backend.channels_last and list(detail["shape"]) == [1, 64, 64, 3]
    assert detail["dtype"] == np.float32 and backend.fixed_shape == (64, 64) and backend.fixed_batch == 1
    assert backend.names == gelan.names and backend.metadata["precision"] == "fp32"
    images = torch.rand(3, 3, 64, 64)  # three invocations of the batch-1 file
    with torch.no_grad():
        assert_close_to_torch(backend(images), gelan(images))
    smaller = torch.rand(1, 3, 32, 64)  # padded at the bottom with the letterbox grey
    padded = torch.full((1, 3, 64, 64), 114 / 255)
    padded[:, :, :32] = smaller
    with torch.no_grad():
        assert_close_to_torch(backend(smaller), gelan(padded))


@pytest.mark.slow_deploy
def test_int8_has_int8_input_float_head_and_correlates(gelan_export, dataset):
    path = gelan_export.int8_file
    assert gelan_export.path == path and path.name == "gelan-int8.tflite"
    assert set(gelan_export.check["int8"]) == {"mAP50-95_fp32", "mAP50-95_int8"}
    int8 = load_model(path)
    assert int8.input_detail["dtype"] == np.int8 and int8.metadata["precision"] == "int8"
    types = {d["name"]: d["dtype"] for d in int8.interpreter.get_tensor_details()}
    final = [t for n, t in types.items() if re.search(r"DetectHead_22/torch\.nn\.modules\.container\.Sequential_\d+/"
                                                       r"torch\.nn\.modules\.conv\.Conv2d_2;", n)]
    hidden = [t for n, t in types.items() if "Sequential_0/yolov9.nn.blocks.Conv_0" in n]
    assert final and all(t == np.float32 for t in final) and np.int8 in hidden
    assert path.stat().st_size < 0.6 * gelan_export.file.stat().st_size
    image = cv2.imread(str(sorted((dataset.parent / "images").iterdir())[0]))
    images = torch.from_numpy(image[..., ::-1].transpose(2, 0, 1).copy())[None].float() / 255
    fp32, quantized = load_model(gelan_export.file)(images), int8(images)
    for rows in (slice(0, 4), slice(4, None)):
        assert np.corrcoef(fp32[:, rows].flatten().numpy(), quantized[:, rows].flatten().numpy())[0, 1] > 0.9


@pytest.mark.slow_deploy
def test_stripped_yolov9_via_cli_and_fixed_shape_padding_in_predict(litert, tmp_path, monkeypatch):
    """A dual-branch checkpoint exported by `yolov9 export --format tflite` at 64x96 equals its main branch; a
    1280x720 frame is letterboxed to the file's fixed shape."""
    model = tiny_model("yolov9-t", nc=2, seed=1)
    save_checkpoint(tmp_path / "y.pt", model)
    target = tmp_path / "y.tflite"
    assert main(["export", "--weights", str(tmp_path / "y.pt"), "--format", "tflite", "--imgsz", "64", "96",
                 "--file", str(target)]) == 0
    backend = load_model(target)
    images = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        assert_close_to_torch(backend(images), model(images))
    inputs, run = [], backend.run
    monkeypatch.setattr(backend, "run", lambda array: inputs.append(array.shape) or run(array))
    frame = cv2.resize(np.random.default_rng(0).integers(0, 255, (9, 16, 3), dtype=np.uint8), (1280, 720))
    predict(backend, frame, imgsz=640, progress=False)
    assert inputs == [(1, 3, 64, 96)]


@pytest.mark.slow_deploy
def test_fp16_weights_halve_the_file(litert, gelan, gelan_export, tmp_path):
    path = Exporter(gelan, "tflite", imgsz=64, half=True, verbose=False, file=tmp_path / "fp16.tflite").run()
    assert path.stat().st_size < 0.7 * gelan_export.file.stat().st_size
    backend = load_model(path)
    assert backend.input_detail["dtype"] == np.float32 and backend.metadata["precision"] == "fp16"
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert_close_to_torch(backend(images), gelan(images), box_atol=0.5, score_atol=1e-2)


@pytest.mark.slow_deploy
def test_segmentation_matches_pytorch(litert, tmp_path):
    model = tiny_model("gelan-t-seg", nc=2)
    path = Exporter(model, "tflite", imgsz=64, verbose=False, file=tmp_path / "seg.tflite").run()
    backend = load_model(path)
    assert backend.task == "segment"
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(images)
    got = backend(images)
    assert isinstance(got, tuple) and got[1].shape == expected[1].shape == (1, 32, 16, 16)
    assert_close_to_torch(got[0], expected[0])
    torch.testing.assert_close(got[1], expected[1], atol=1e-3, rtol=0)


@pytest.mark.parametrize("option, message", [({"nms": True}, "has no in-graph NMS"),
                                             ({"dynamic": True}, "has fixed shapes")])
def test_refuses_what_the_format_cannot_hold(option, message):
    with pytest.raises(YOLOv9Error, match=f"--format tflite {message}"):
        Exporter(tiny_model("gelan-t"), "tflite", imgsz=64, **option)
