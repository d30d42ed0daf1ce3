"""`yolov9 benchmark`: one row per format with size, mAP and speed, the same mAP in every runtime, formats whose
packages are missing listed as not installed, a JSON report."""
from __future__ import annotations

import json

import pytest

from _train_data import write_dataset
from deploy_helpers import pseudo_labelled, tiny_model
from yolov9.cli import main
from yolov9.export.exporter import FORMATS
from yolov9.io.checkpoint import save_checkpoint

pytest.importorskip("openvino")


@pytest.fixture(autouse=True, scope="module")
def _no_openvino_telemetry():
    """OpenVINO's converter sends telemetry unless in CI (offline: about 1.5 s lost per conversion)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CI", "true")
        yield


def test_benchmark_lists_every_format(tmp_path, monkeypatch, capsys):
    model = tiny_model("gelan-t", nc=2, seed=5)
    save_checkpoint(tmp_path / "m.pt", model, train_args={"imgsz": 64})
    data = pseudo_labelled(write_dataset(tmp_path / "data", n_images=4, size=64).parent, model, 64)
    monkeypatch.setattr(FORMATS["tflite"], "missing", lambda: ["litert_torch"])  # as without the litert extra
    assert main(["benchmark", "--weights", str(tmp_path / "m.pt"), "--data", str(data), "--workers", "0",
                 "--formats", "torch", "onnx", "openvino", "tflite", "--project", str(tmp_path / "runs")]) == 0
    report = json.loads((tmp_path / "runs" / "exp" / "benchmark.json").read_text())
    rows = {row["format"]: row for row in report["rows"]}
    assert report["imgsz"] == 64 and list(rows) == ["torch", "onnx", "openvino", "tflite"]
    assert rows["tflite"]["status"] == 'not installed (pip install "yolov9[litert]")'
    for name in ("torch", "onnx", "openvino"):
        row = rows[name]
        assert row["status"] == "ok" and row["size_mb"] > 0, row
        assert set(row) >= {"file", "mAP50", "mAP50-95", "preprocess", "inference", "nms"}
        assert row["mAP50-95"] == pytest.approx(rows["torch"]["mAP50-95"], abs=1e-3)  # same model, any runtime
    assert rows["torch"]["mAP50-95"] > 0.9  # scored against its own detections
    assert (tmp_path / "runs" / "exp" / "m-64.onnx").is_file()
    assert (tmp_path / "runs" / "exp" / "m-64_openvino_model").is_dir()
    printed = capsys.readouterr().out
    assert all(name in printed for name in rows) and "not installed" in printed
