"""OpenVINO: export (static, dynamic, segmentation, INT8 by NNCF) equal to PyTorch, the backend through predict
(rect letterbox for dynamic IRs, padding for fixed ones) and val, and `--backend auto`'s cached conversion."""
from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from _train_data import write_dataset
from deploy_helpers import pseudo_labelled, tiny_model
from yolov9.cli import main
from yolov9.engine.predictor import predict
from yolov9.engine.validator import validate
from yolov9.errors import YOLOv9Error
from yolov9.export import cached
from yolov9.export.exporter import FORMATS, Exporter
from yolov9.io.checkpoint import save_checkpoint
from yolov9.runtime import TorchBackend, load_model
from yolov9.runtime.onnx_backend import OnnxBackend

ov = pytest.importorskip("openvino")
from yolov9.runtime.openvino_backend import OpenVinoBackend  # noqa: E402  (after the skip without openvino)


@pytest.fixture(autouse=True, scope="module")
def _no_openvino_telemetry():
    """OpenVINO's converter sends telemetry unless in CI (offline: about 1.5 s lost per conversion)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CI", "true")
        yield

def assert_close_to_torch(got: torch.Tensor, expected: torch.Tensor) -> None:
    """Boxes within 1e-2 px + 1e-3 relative, scores (and any further rows) within 1e-3."""
    torch.testing.assert_close(got[:, :4], expected[:, :4], atol=1e-2, rtol=1e-3)
    torch.testing.assert_close(got[:, 4:], expected[:, 4:], atol=1e-3, rtol=0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data"), n_images=4, size=64)


@pytest.fixture(scope="module")
def gelan():
    return tiny_model("gelan-t", nc=2)


@pytest.fixture(scope="module")
def gelan_export(gelan, tmp_path_factory) -> Exporter:
    """A static 64x64 IR of a tiny gelan, checked by the exporter."""
    exporter = Exporter(gelan, "openvino", imgsz=64, verbose=False,
                        file=tmp_path_factory.mktemp("gelan") / "gelan_openvino_model")
    exporter.run()
    return exporter


@pytest.fixture(scope="module")
def yolov9_checkpoint(tmp_path_factory) -> tuple[torch.nn.Module, Path]:
    """A dual-branch tiny yolov9 saved as a checkpoint."""
    model = tiny_model("yolov9-t", nc=2, seed=1)
    path = tmp_path_factory.mktemp("yolov9") / "y.pt"
    save_checkpoint(path, model, train_args={"imgsz": 64})  # the conversion's check runs at 64
    return model, path


@pytest.fixture(scope="module")
def yolov9_auto(yolov9_checkpoint) -> OpenVinoBackend:
    """`--backend auto` of the checkpoint: its dynamic IR, converted once and cached next to it."""
    return cached.cached_backend(yolov9_checkpoint[1], verbose=False)


def test_static_ir_matches_pytorch_keeps_metadata_and_runs_any_batch(gelan, gelan_export):
    assert gelan_export.file.name == "gelan_openvino_model"
    assert sorted(p.name for p in gelan_export.file.iterdir()) == ["gelan.bin", "gelan.xml"]
    check = gelan_export.check
    assert check["max_abs_diff_boxes"] < 1e-2 and check["max_abs_diff_scores"] < 1e-3
    backend = load_model(gelan_export.file)
    assert isinstance(backend, OpenVinoBackend) and backend.fixed_shape == (64, 64) and backend.fixed_batch == 1
    assert backend.names == gelan.names and backend.stride == 32 and backend.task == "detect"
    assert backend.metadata["precision"] == "fp32"
    images = torch.rand(3, 3, 64, 64)  # three runs of the batch-1 IR
    with torch.no_grad():
        assert_close_to_torch(backend(images), gelan(images))


@pytest.mark.slow_deploy  # NNCF takes 10-20 s even for a tiny model (make test-deploy)
def test_int8_ir_keeps_the_head_float_and_correlates(gelan, dataset, tmp_path):
    exporter = Exporter(gelan, "openvino", imgsz=64, int8=True, data=dataset, calib_images=4, verbose=False,
                        file=tmp_path / "gelan_openvino_model")
    path = exporter.run()
    assert path == exporter.int8_file and path.name == "gelan-int8_openvino_model"
    assert set(exporter.check["int8"]) == {"mAP50-95_fp32", "mAP50-95_int8"}
    model = ov.Core().read_model(str(next(path.glob("*.xml"))))
    convs = {op.get_friendly_name(): op for op in model.get_ops()
             if op.get_type_name() in ("Convolution", "GroupConvolution")}

    def quantized(op) -> bool:  # int8 activations come through a FakeQuantize
        return op.input_value(0).get_node().get_type_name() == "FakeQuantize"

    final = [op for name, op in convs.items() if re.search(r"/model\.22/cv([23])\.\d/cv\1\.\d\.2/Conv/", name)]
    hidden = [op for name, op in convs.items() if re.search(r"/model\.22/cv([23])\.\d/cv\1\.\d\.0/conv/", name)]
    assert len(final) == len(hidden) == 6
    assert not any(quantized(op) for op in final) and all(quantized(op) for op in hidden)
    assert sum(quantized(op) for op in convs.values()) > len(convs) // 2
    image = cv2.imread(str(sorted((dataset.parent / "images").iterdir())[0]))
    images = torch.from_numpy(image[..., ::-1].transpose(2, 0, 1).copy())[None].float() / 255
    int8 = load_model(path)
    assert int8.metadata["precision"] == "int8"
    fp32, quantized_output = load_model(exporter.file)(images), int8(images)
    for rows in (slice(0, 4), slice(4, None)):
        correlation = np.corrcoef(fp32[:, rows].flatten().numpy(), quantized_output[:, rows].flatten().numpy())
        assert correlation[0, 1] > 0.9


def test_stripped_yolov9_dynamic_ir_matches_the_main_branch(yolov9_checkpoint, yolov9_auto):
    model, _ = yolov9_checkpoint
    assert model.branches == 2 and yolov9_auto.fixed_shape is None and yolov9_auto.fixed_batch is None
    shapes = [(1, 3, 64, 64), (2, 3, 96, 64), (1, 3, 64, 64)]
    for shape in shapes:
        images = torch.rand(shape)
        with torch.no_grad():
            expected = model(images)  # eval output of the dual model = its main branch
        assert_close_to_torch(yolov9_auto(images), expected)
    assert list(yolov9_auto.requests) == shapes[:2]  # compiled once per input shape, static


def test_a_dynamic_ir_keeps_at_most_eight_static_compilations(yolov9_auto, monkeypatch):
    monkeypatch.setattr(yolov9_auto, "requests", {})
    sizes = [32 * k for k in range(2, 12)]
    for side in sizes:
        yolov9_auto(torch.rand(1, 3, side, 64))
    assert [shape[2] for shape in yolov9_auto.requests] == sizes[-OpenVinoBackend.STATIC_SHAPES:]


def test_segmentation_ir_via_cli(tmp_path):
    """`yolov9 export --format openvino` of a segmentation checkpoint, 64x96: boxes, scores, mask coefficients
    and prototypes equal PyTorch."""
    model = tiny_model("gelan-t-seg", nc=2)
    save_checkpoint(tmp_path / "seg.pt", model)
    folder = tmp_path / "seg_openvino_model"
    assert main(["export", "--weights", str(tmp_path / "seg.pt"), "--format", "openvino", "--imgsz", "64", "96",
                 "--file", str(folder)]) == 0
    backend = load_model(folder)
    assert backend.task == "segment" and backend.fixed_shape == (64, 96)
    images = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        expected = model(images)
    got = backend(images)
    assert isinstance(got, tuple) and len(got) == 2
    assert_close_to_torch(got[0], expected[0])
    torch.testing.assert_close(got[1], expected[1], atol=1e-3, rtol=0)


def recorded_inputs(backend, monkeypatch) -> list:
    """The arrays `backend.run` receives from now on."""
    inputs, run = [], backend.run
    monkeypatch.setattr(backend, "run", lambda array: inputs.append(array) or run(array))
    return inputs


def test_rect_letterbox_for_dynamic_irs_padding_for_fixed_ones(yolov9_checkpoint, yolov9_auto, gelan_export,
                                                               monkeypatch):
    """A 1280x720 frame at imgsz 640 runs at 384x640 through the dynamic IR (with PyTorch's outputs on it), and
    at the exported 64x64 through the fixed one."""
    frame = cv2.resize(np.random.default_rng(0).integers(0, 255, (9, 16, 3), dtype=np.uint8), (1280, 720))
    inputs = recorded_inputs(yolov9_auto, monkeypatch)
    result = predict(yolov9_auto, frame, imgsz=640, progress=False)[0]
    assert [a.shape for a in inputs] == [(1, 3, 384, 640)]
    rect = torch.from_numpy(inputs[0])
    with torch.no_grad():
        assert_close_to_torch(yolov9_auto(rect), yolov9_checkpoint[0](rect))
    assert result.boxes.xyxy.shape[0] and result.boxes.xyxy.max() <= 1280
    fixed = load_model(gelan_export.file)
    inputs = recorded_inputs(fixed, monkeypatch)
    predict(fixed, frame, imgsz=640, progress=False)
    assert [a.shape for a in inputs] == [(1, 3, 64, 64)]


def test_val_through_the_ir_scores_like_pytorch(yolov9_checkpoint, yolov9_auto, dataset):
    data = pseudo_labelled(dataset.parent, yolov9_checkpoint[0], 64)
    options = dict(imgsz=64, batch=2, workers=0, plots=False, verbose=False)
    reference = validate(yolov9_checkpoint[0], data, **options)
    ours = validate(yolov9_auto, data, **options)
    assert reference["mAP50-95"] > 0.9
    for key in ("precision", "recall", "mAP50", "mAP50-95"):
        assert ours[key] == pytest.approx(reference[key], abs=1e-3), key


def test_auto_backend_converts_once_then_reuses_the_cache(yolov9_checkpoint, yolov9_auto, monkeypatch):
    _, weights = yolov9_checkpoint
    cache = cached.cache_path(weights, "openvino")
    assert cache == weights.with_name("y.cache_openvino_model") and cache.is_dir()
    assert yolov9_auto.metadata["cache_key"] == cached.cache_key(weights, "openvino")
    exports = []
    monkeypatch.setattr(Exporter, "run", lambda self: exports.append(self))
    assert isinstance(cached.cached_backend(weights, verbose=False), OpenVinoBackend) and not exports
    image = weights.with_name("frame.png")
    cv2.imwrite(str(image), np.full((72, 128, 3), 90, np.uint8))
    assert main(["detect", "--weights", str(weights), "--source", str(image), "--nosave"]) == 0 and not exports


def test_auto_falls_back_and_stale_or_corrupt_caches_are_rebuilt(tmp_path, monkeypatch):
    """Without OpenVINO, auto converts to ONNX Runtime; a checkpoint overwritten with other weights (stale cache)
    and a truncated cache (corrupt) are converted again; without either runtime, PyTorch."""
    weights = tmp_path / "m.pt"
    save_checkpoint(weights, tiny_model("gelan-t", nc=2, seed=3), train_args={"imgsz": 64})
    monkeypatch.setattr(FORMATS["openvino"], "missing", lambda: ["openvino"])
    first = cached.cached_backend(weights, verbose=False)
    cache = cached.cache_path(weights, "onnxruntime")
    assert isinstance(first, OnnxBackend) and cache == tmp_path / "m.cache.onnx" and first.fixed_shape is None
    retrained = tiny_model("gelan-t", nc=2, seed=4)
    save_checkpoint(weights, retrained, train_args={"imgsz": 64})
    images = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        assert_close_to_torch(cached.cached_backend(weights, verbose=False)(images), retrained(images))
    cache.write_bytes(cache.read_bytes()[:1000])
    rebuilt = cached.cached_backend(weights, backend="onnxruntime", verbose=False)
    assert rebuilt.metadata["cache_key"] == cached.cache_key(weights, "onnxruntime")
    monkeypatch.setattr(FORMATS["onnx"], "missing", lambda: ["onnx"])
    assert type(cached.cached_backend(weights, verbose=False)) is TorchBackend


def test_torch_where_no_conversion_applies_and_clear_errors(yolov9_checkpoint, yolov9_auto):
    model, weights = yolov9_checkpoint
    assert type(cached.cached_backend(weights, half=True, verbose=False)) is TorchBackend
    assert type(cached.cached_backend(tiny_model("gelan-t"), verbose=False)) is TorchBackend  # no file to cache by
    assert type(cached.cached_backend(weights, backend="torch", verbose=False)) is TorchBackend
    with pytest.raises(YOLOv9Error, match="--backend openvino runs a float32 conversion on the CPU"):
        cached.cached_backend(weights, half=True, backend="openvino")
    with pytest.raises(YOLOv9Error, match="a openvino file runs in its own runtime"):
        cached.cached_backend(cached.cache_path(weights, "openvino"), backend="onnxruntime")
