"""Trainer safety and options: the non-finite loss guard, frozen layers, single-class mode."""
from __future__ import annotations

import copy

import pytest
import torch

from _train_data import tiny_config, write_dataset
from yolov9 import build_model
from yolov9.engine.trainer import train
from yolov9.errors import YOLOv9Error
from yolov9.io.checkpoint import read_checkpoint
from yolov9.loss import DetectionLoss

FAST = dict(epochs=1, imgsz=64, batch=2, workers=0, val=False, plots=False, verbose=False, mosaic=0.0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("squares"), n_images=8, size=96)  # 4 batches of 2


def tiny_model():
    torch.manual_seed(0)
    return build_model(tiny_config(1), nc=2)


def poison_losses(monkeypatch, bad_calls: set) -> None:
    """The loss of the listed (0-based) calls becomes inf; the others are the real loss."""
    real, calls = DetectionLoss.__call__, []

    def maybe_inf(self, outputs, targets):
        loss, items = real(self, outputs, targets)
        calls.append(len(calls))
        return (loss * float("inf"), items) if calls[-1] in bad_calls else (loss, items)

    monkeypatch.setattr(DetectionLoss, "__call__", maybe_inf)


def test_one_non_finite_loss_is_skipped_with_a_warning(data, tmp_path, monkeypatch):
    poison_losses(monkeypatch, {1})
    model = tiny_model()
    with pytest.warns(RuntimeWarning, match="batch 1: loss is inf; step skipped"):
        result = train(model, data=str(data), project=str(tmp_path), nbs=2, warmup_epochs=0.0, **FAST)
    assert [row["epoch"] for row in result["results"]] == [0]
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert read_checkpoint(result["save_dir"] / "weights" / "last.pt")["epoch"] == 0


def test_consecutive_non_finite_losses_stop_training(data, tmp_path, monkeypatch):
    poison_losses(monkeypatch, {1, 2, 3})
    with pytest.warns(RuntimeWarning), pytest.raises(YOLOv9Error, match="3 consecutive non-finite steps") as error:
        train(tiny_model(), data=str(data), project=str(tmp_path), max_bad_steps=3, **FAST)
    assert "last.pt" in str(error.value) and "lr0" in str(error.value)


def test_frozen_layers_do_not_change(data, tmp_path):
    model = tiny_model()
    before = copy.deepcopy(model.state_dict())
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}  # the DFL conv never trains
    train(model, data=str(data), project=str(tmp_path), freeze=3, nbs=2, warmup_epochs=0.0, **FAST)
    frozen = trainable - {name for name, p in model.named_parameters() if p.requires_grad}
    assert frozen == {name for name in trainable if name.startswith(("model.0.", "model.1.", "model.2."))} != set()
    after = model.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in frozen)
    trained = sorted(trainable - frozen)
    assert sum(not torch.equal(before[name], after[name]) for name in trained) > 0.9 * len(trained)


def test_single_class_mode_trains_one_class(data, tmp_path):
    result = train(tiny_model(), data=str(data), project=str(tmp_path), single_cls=True, **FAST)
    assert result["model"].nc == 1 and result["model"].names == ["item"]
    saved = read_checkpoint(result["save_dir"] / "weights" / "last.pt")
    assert saved["nc"] == 1 and saved["names"] == ["item"]
