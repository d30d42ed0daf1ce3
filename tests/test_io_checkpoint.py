"""Our checkpoint format: weights_only-loadable, bit-identical round trip, atomic saves, clear errors."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch

import yolov9
from yolov9.errors import CheckpointError
from yolov9.io import atomic
from yolov9.io.checkpoint import read_checkpoint, save_checkpoint, strip_optimizer_state

TINY = {"nc": 3, "depth_multiple": 1.0, "width_multiple": 1.0,
        "backbone": [[-1, 1, "Conv", [8, 3, 2]], [-1, 1, "Conv", [16, 3, 2]], [-1, 1, "RepNCSPELAN4", [16, 16, 8, 1]],
                     [-1, 1, "ADown", [32]], [-1, 1, "ADown", [32]]],
        "head": [[[2, 3, 4], 1, "DDetect", ["nc"]]]}


@pytest.fixture
def model():
    model = yolov9.build_model(TINY, names=["cat", "dog", "bird"])
    with torch.no_grad():  # non-default BatchNorm statistics, so that a lost buffer would show
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


@pytest.fixture
def image():
    return torch.rand(2, 3, 64, 96)


def outputs(model, image):
    with torch.no_grad():
        return model.eval()(image)


def test_round_trip_is_bit_identical(tmp_path, model, image):
    path = save_checkpoint(tmp_path / "best.pt", model)
    loaded = yolov9.load(path)
    assert torch.equal(outputs(loaded, image), outputs(model, image))
    assert loaded.names == ["cat", "dog", "bird"] and loaded.yaml["backbone"] == TINY["backbone"]
    raw = torch.load(path, weights_only=True)  # plain torch can read it without running code
    assert raw["format"] == "yolov9" and raw["version"] == 1 and raw["torch_version"] == str(torch.__version__)


def test_fused_load(tmp_path, model, image):
    loaded = yolov9.load(save_checkpoint(tmp_path / "best.pt", model), fuse=True)
    assert loaded.is_fused
    torch.testing.assert_close(outputs(loaded, image), outputs(model, image), rtol=1e-4, atol=1e-4)


def test_training_checkpoint_keeps_resume_state(tmp_path, model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    model.train()
    sum(m.sum() for branch in model(torch.rand(1, 3, 64, 64)) for m in branch).backward()
    optimizer.step()
    ema = yolov9.build_model(TINY)
    rng = np.random.RandomState(0).get_state()
    path = save_checkpoint(tmp_path / "last.pt", model, ema=ema, optimizer=optimizer, epoch=7, best_fitness=0.25,
                           train_args={"data": pathlib.Path("coco.yaml"), "epochs": 10},
                           trainer={"numpy_rng": rng, "torch_rng": torch.get_rng_state()})
    ckpt = read_checkpoint(path)
    assert ckpt["epoch"] == 7 and ckpt["best_fitness"] == 0.25 and ckpt["train_args"]["data"] == "coco.yaml"
    assert all(torch.equal(ckpt["ema"][k], v) for k, v in ema.state_dict().items())
    restored = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    restored.load_state_dict(ckpt["optimizer"])
    for a, b in zip(optimizer.state.values(), restored.state.values()):
        assert torch.equal(a["momentum_buffer"], b["momentum_buffer"])
    np.random.set_state(tuple(ckpt["trainer"]["numpy_rng"]))
    assert np.random.rand() == np.random.RandomState(0).rand()
    assert torch.equal(ckpt["trainer"]["torch_rng"], torch.get_rng_state())
    # `load` uses the EMA weights, as the official loader does.
    assert all(torch.equal(v, ema.state_dict()[k]) for k, v in yolov9.load(path).state_dict().items())


def test_release_file_is_ema_in_fp16(tmp_path, model):
    ema = yolov9.build_model(TINY)
    path = save_checkpoint(tmp_path / "last.pt", model, ema=ema, optimizer=torch.optim.SGD(model.parameters()))
    strip_optimizer_state(path, tmp_path / "release.pt")
    ckpt = read_checkpoint(tmp_path / "release.pt")
    assert ckpt["optimizer"] is None and ckpt["ema"] is None
    assert all(torch.equal(ckpt["model"][k], v.half() if v.is_floating_point() else v)
               for k, v in ema.state_dict().items())
    assert (tmp_path / "release.pt").stat().st_size < path.stat().st_size


def test_interrupted_save_keeps_the_previous_file(tmp_path, model, monkeypatch):
    path = save_checkpoint(tmp_path / "last.pt", model, epoch=1)
    before = path.read_bytes()

    def failing_save(obj, f, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(atomic.torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, epoch=2)
    assert path.read_bytes() == before and read_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_atomic_write_bytes_replaces_whole_file(tmp_path):
    path = atomic.atomic_write_bytes(tmp_path / "sub" / "f.bin", b"first")
    atomic.atomic_write_bytes(path, b"second version")
    assert path.read_bytes() == b"second version"


def test_key_and_shape_mismatches_are_listed(tmp_path, model):
    path = save_checkpoint(tmp_path / "best.pt", model)
    ckpt = torch.load(path, weights_only=True)
    del ckpt["model"]["model.0.conv.weight"]
    ckpt["model"]["model.9.extra"] = torch.zeros(1)
    ckpt["model"]["model.1.bn.bias"] = torch.zeros(5)
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError) as info:
        yolov9.load(path)
    message = str(info.value)
    assert "best.pt" in message and "model.0.conv.weight" in message and "model.9.extra" in message
    assert "model.1.bn.bias (5,) vs model (16,)" in message


def test_unknown_format_and_newer_version(tmp_path, model):
    plain = tmp_path / "state_dict.pt"
    torch.save(model.state_dict(), plain)
    with pytest.raises(CheckpointError, match="state_dict.pt: unknown checkpoint format"):
        yolov9.load(plain)
    with pytest.raises(CheckpointError, match="not a yolov9-format checkpoint"):
        read_checkpoint(plain)
    newer = save_checkpoint(tmp_path / "newer.pt", model)
    ckpt = torch.load(newer, weights_only=True)
    torch.save({**ckpt, "version": 99}, newer)
    with pytest.raises(CheckpointError, match="version 99 is newer"):
        yolov9.load(newer)


def test_unstorable_values_are_named(tmp_path, model):
    with pytest.raises(CheckpointError, match=r"train_args.callback"):
        save_checkpoint(tmp_path / "x.pt", model, train_args={"callback": print})
    assert not (tmp_path / "x.pt").exists()
