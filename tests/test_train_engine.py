"""End-to-end training on a generated dataset: checkpoints, exact resume, run folder, stripped final files."""
from __future__ import annotations

import shutil

import pytest
import torch

from _train_data import tiny_config, write_dataset
from yolov9 import build_model
from yolov9.engine.trainer import adapt_to_classes, train
from yolov9.io.checkpoint import read_checkpoint

FAST = dict(imgsz=64, batch=4, workers=0, verbose=False, plots=False, val=False)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("squares"), n_images=8, size=96)


def tiny_model(branches: int = 2):
    torch.manual_seed(0)
    return build_model(tiny_config(branches), nc=2)


def assert_same_state(a: dict, b: dict, where: str):
    assert a.keys() == b.keys(), where
    for key in a:
        assert torch.equal(a[key], b[key]), f"{where}: {key} differs"


@pytest.mark.slow
def test_resume_from_epoch_1_reproduces_epoch_2_bitwise(data, tmp_path):
    full = train(tiny_model(), data=str(data), epochs=2, save_period=1, project=str(tmp_path), name="full", **FAST)
    weights = full["save_dir"] / "weights"
    assert {p.name for p in weights.iterdir()} == {"last.pt", "best.pt", "epoch1.pt", "epoch2.pt"}
    final = read_checkpoint(weights / "last.pt")
    assert final["optimizer"] is None and final["ema"] is None  # stripped: EMA weights only, fp16
    assert all(v.dtype == torch.float16 for v in final["model"].values() if v.is_floating_point())
    assert (full["save_dir"] / "args.yaml").is_file() and (full["save_dir"] / "hyp.yaml").is_file()
    assert [r["epoch"] for r in full["results"]] == [0, 1]

    resumed_dir = tmp_path / "resumed" / "weights"
    resumed_dir.mkdir(parents=True)
    shutil.copy(weights / "epoch1.pt", resumed_dir / "last.pt")
    resumed = train(None, resume=str(resumed_dir / "last.pt"), verbose=False)
    a, b = read_checkpoint(weights / "epoch2.pt"), read_checkpoint(resumed_dir / "epoch2.pt")
    assert a["epoch"] == b["epoch"] == 1
    assert_same_state(a["model"], b["model"], "model")
    assert_same_state(a["ema"], b["ema"], "ema")
    assert a["ema_updates"] == b["ema_updates"] > 0
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert_same_state(sa, sb, "optimizer")
    # the history travels in the checkpoint: the resumed run's results.csv has every epoch, even in a new folder
    assert [r["epoch"] for r in resumed["results"]] == [0, 1]
    assert (resumed_dir.parent / "results.csv").read_text().count("\n") == 3


def test_two_epochs_of_the_official_recipe_lower_the_loss(tmp_path):
    """2-branch tiny model, default recipe (SGD, warm-up, augmentation), 8 batches per epoch: the mean training
    loss (box + cls + dfl) of epoch 2 is below that of epoch 1."""
    data = write_dataset(tmp_path / "squares", n_images=8, size=96, train_copies=4)
    result = train(tiny_model(2), data=str(data), epochs=2, project=str(tmp_path), **FAST)
    totals = [sum(row[f"train/{k}_loss"] for k in ("box", "cls", "dfl")) for row in result["results"]]
    assert totals[1] < 0.95 * totals[0], totals


def test_new_class_tensors_are_drawn_with_the_run_seed():
    """Adapting an 80-class model to 1 class keeps the fitting tensors and draws the rest with the given seed."""
    model = build_model("gelan-t")
    first, again, other = (adapt_to_classes(model, ["tree"], seed=s).state_dict() for s in (3, 3, 4))
    old = model.state_dict()
    redrawn = [k for k in first if old[k].shape != first[k].shape]
    assert redrawn and all(torch.equal(first[k], old[k]) for k in first if k not in redrawn)
    assert all(torch.equal(first[k], again[k]) for k in redrawn)
    assert not all(torch.equal(first[k], other[k]) for k in redrawn)
