"""Official checkpoints load through `yolov9.load` and reproduce the official implementation's outputs."""
from __future__ import annotations

import copy
import json

import pytest
import torch

import yolov9
from yolov9.io.official import read_official

MODELS = ["yolov9-t", "gelan-t", "yolov9-c-mini", "yolov9-t-converted", "yolov9-c-mini-converted"]
BOX_ATOL, SCORE_RTOL, TRAIN_ATOL = 1e-3, 1e-4, 5e-3


@pytest.fixture(scope="module")
def loaded(official_dir):
    cache = {}

    def get(name: str) -> torch.nn.Module:
        if name not in cache:
            cache[name] = yolov9.load(official_dir / f"{name}.pt")
        return cache[name]
    return get


def assert_eval_close(out: torch.Tensor, ref: torch.Tensor) -> None:
    """Boxes within BOX_ATOL px, scores within SCORE_RTOL relative (scores are tiny: abs tol would test nothing)."""
    assert out.shape == ref.shape
    assert (out[:, :4] - ref[:, :4]).abs().max() <= BOX_ATOL
    torch.testing.assert_close(out[:, 4:], ref[:, 4:], rtol=SCORE_RTOL, atol=0)


@pytest.mark.parametrize("name", MODELS)
def test_official_checkpoint_reproduces_fixture_outputs(official_dir, loaded, name):
    reference = torch.load(official_dir / f"{name}.io.pt", weights_only=True)
    meta = json.loads((official_dir / f"{name}.json").read_text())
    model = loaded(name)
    assert not model.training
    assert sum(p.numel() for p in model.parameters()) == meta["param_count"]
    assert model.stride.tolist() == reference["strides"].tolist()
    with torch.no_grad():
        outputs = model(reference["input"], all_branches=True)
    expected = sorted(k for k in reference if k.startswith("eval_out_"))
    assert len(outputs) == len(expected)  # both branches of dual models, in the official order [aux, main]
    for out, key in zip(outputs, expected):
        assert_eval_close(out, reference[key])


def test_train_mode_maps_match(official_dir, loaded):
    """Full train mode (BatchNorm on batch statistics), both branches: [aux levels..., main levels...]."""
    reference = torch.load(official_dir / "yolov9-c-mini.io.pt", weights_only=True)
    model = copy.deepcopy(loaded("yolov9-c-mini")).train()
    with torch.no_grad():
        maps = [m for branch in model(reference["input"]) for m in branch]
    assert len(maps) == 6
    for k, m in enumerate(maps):
        torch.testing.assert_close(m, reference[f"train_feats_{k}"], atol=TRAIN_ATOL, rtol=0)


def test_checkpoint_metadata_and_main_branch(official_dir, loaded):
    meta = json.loads((official_dir / "yolov9-c-mini.json").read_text())
    model = loaded("yolov9-c-mini")
    assert model.names == ["cat", "dog", "bird"] and model.nc == 3 and model.branches == 2
    assert model.hyp["lr0"] == pytest.approx(0.01)
    assert len(model.state_dict()) == meta["state_dict_keys"]
    reference = torch.load(official_dir / "yolov9-c-mini.io.pt", weights_only=True)
    with torch.no_grad():  # inference output = the main branch (official eval_out_1)
        assert_eval_close(model(reference["input"]), reference["eval_out_1"])


@pytest.mark.parametrize("yolov9_name, converted", [("yolov9-t", "yolov9-t-converted"),
                                                    ("yolov9-c-mini", "yolov9-c-mini-converted")])
def test_strip_equals_official_conversion(official_dir, loaded, yolov9_name, converted):
    stripped = yolov9.strip_auxiliary(loaded(yolov9_name))
    official = loaded(converted).state_dict()  # the official file's fp16 weights, strictly loaded into fp32
    ours = stripped.state_dict()
    assert list(ours) == list(official)
    for key, value in official.items():
        assert torch.equal(ours[key], value), key
    reference = torch.load(official_dir / f"{converted}.io.pt", weights_only=True)
    with torch.no_grad():
        assert_eval_close(stripped(reference["input"]), reference["eval_out_0"])


def test_unstripped_training_checkpoint(official_dir):
    """`last.pt` mid-training: EMA weights are used (as the official loader does); numpy / pathlib become plain."""
    meta = json.loads((official_dir / "gelan-t.unstripped.json").read_text())
    checkpoint = read_official(official_dir / "gelan-t.unstripped.pt")
    assert checkpoint.source == "ema"
    assert checkpoint.meta["epoch"] == 0 and checkpoint.meta["has_optimizer"]
    assert checkpoint.meta["best_fitness"] == pytest.approx(meta["best_fitness"]["value"][0])
    assert isinstance(checkpoint.meta["opt"]["data"], str) and isinstance(checkpoint.meta["opt"]["project"], str)
    model = yolov9.load(official_dir / "gelan-t.unstripped.pt")
    image = torch.load(official_dir / "gelan-t.io.pt", weights_only=True)["input"]
    with torch.no_grad():
        out = model(image)
    expected = meta["ema_eval_out_0_on_fixture_input"]
    assert list(out.shape) == expected["shape"]
    assert out.sum().item() == pytest.approx(expected["sum"], rel=1e-6)
    assert out.abs().max().item() == pytest.approx(expected["absmax"], abs=BOX_ATOL)
    assert out[0, :5, 0].tolist() == pytest.approx(expected["first5_of_anchor0"], rel=SCORE_RTOL, abs=BOX_ATOL)


def test_fused_model_matches(official_dir, loaded):
    reference = torch.load(official_dir / "gelan-t.io.pt", weights_only=True)
    model = copy.deepcopy(loaded("gelan-t")).fuse()
    assert model.is_fused
    with torch.no_grad():
        assert_eval_close(model(reference["input"]), reference["eval_out_0"])
