"""Fine-tuning transfer from an nc=80 official checkpoint into an nc=3 model."""
from __future__ import annotations

import torch

import yolov9
from yolov9.io.checkpoint import save_checkpoint
from yolov9.io.official import read_official

TINY = {"nc": 3, "depth_multiple": 1.0, "width_multiple": 1.0,
        "backbone": [[-1, 1, "Conv", [8, 3, 2]], [-1, 1, "Conv", [16, 3, 2]], [-1, 1, "Conv", [16, 3, 2]],
                     [-1, 1, "ADown", [32]], [-1, 1, "ADown", [32]]],
        "head": [[[2, 3, 4], 1, "DDetect", ["nc"]]]}


def test_nc80_to_nc3_transfers_everything_but_class_logits(official_dir):
    model = yolov9.build_model("gelan-t", names=["cat", "dog", "bird"])
    report = yolov9.load_pretrained(model, official_dir / "gelan-t.pt", verbose=False)
    official = read_official(official_dir / "gelan-t.pt").state_dict
    state = model.state_dict()
    differing = {k for k, v in official.items() if v.shape != state[k].shape}
    # nc sets the class branch's width (max(ch0, min(2 nc, 128))): only class-branch tensors may differ.
    assert differing and all(k.startswith("model.22.cv3.") for k in differing)
    assert set(report.shape_mismatch) == differing
    assert report.shape_mismatch["model.22.cv3.0.2.bias"] == ((80,), (3,))
    assert not report.missing_in_checkpoint and not report.unused_from_checkpoint
    assert len(report.transferred) == len(official) - len(differing) and report.total == len(official)
    assert all(k in report.transferred for k in official if k.startswith("model.22.cv2."))  # box branch kept
    for key in report.transferred:
        assert torch.equal(state[key], official[key].float()), key
    assert str(report).startswith(f"transferred {len(report.transferred)}/{len(official)} tensors from ")
    assert "skipped model.22.cv3.0.2.bias: shape (80,) in checkpoint vs (3,) in model" in str(report)


def test_transfer_between_architectures_reports_missing_and_unused(tmp_path):
    """Single-head checkpoint -> dual-head model: the auxiliary head has no source, nothing else is left over."""
    single = yolov9.build_model(TINY)
    dual = yolov9.build_model({**TINY, "head": [[[2, 3, 4, 2, 3, 4], 1, "DualDDetect", ["nc"]]]})
    report = yolov9.load_pretrained(dual, save_checkpoint(tmp_path / "single.pt", single), verbose=False)
    single_keys, dual_keys = set(single.state_dict()), set(dual.state_dict())
    assert set(report.missing_in_checkpoint) == dual_keys - single_keys
    assert all(".cv4." in k or ".cv5." in k or ".dfl2." in k for k in report.missing_in_checkpoint)
    assert set(report.transferred) == single_keys and not report.unused_from_checkpoint
    assert report.total == len(dual_keys)
