"""Instance-segmentation models against the official implementation: sizes, FLOPs, state-dict keys, checkpoints
and outputs of every branch, fuse, strip, official-layout files, and our own small configs."""
from __future__ import annotations

import copy
import json
import pickletools
import zipfile
from io import BytesIO
from pathlib import Path

import pytest
import torch

import yolov9
from test_models import randomise_batchnorm
from yolov9 import build_model, strip_auxiliary
from yolov9.cli import main
from yolov9.io.convert import strip_checkpoint
from yolov9.io.official import read_official
from yolov9.io.unpickler import InertReference, RestrictedUnpickler, UnsafeCheckpointError

FULL_SIZE = ["gelan-c-seg", "gelan-c-dseg", "yolov9-c-dseg"]
MINI = ["gelan-c-seg-mini", "gelan-c-dseg-mini", "yolov9-c-dseg-mini"]
OURS = {"gelan-t-seg": 1, "gelan-s-seg": 1, "gelan-t-dseg": 1, "gelan-s-dseg": 1, "yolov9-t-dseg": 2,
        "yolov9-s-dseg": 2}
NC, NM = 3, 32
# the fixture README's suggested tolerances
BOX_ATOL, SCORE_RTOL, COEFFICIENT_ATOL, PROTO_ATOL, TRAIN_ATOL = 0.25, 3e-3, 5e-3, 2e-2, 5e-3


def read_keys(path: Path) -> dict[str, tuple]:
    """`key<TAB>[shape]<TAB>dtype` lines of a fixture key list -> {key: shape}."""
    rows = (line.split("\t") for line in path.read_text().splitlines() if line and not line.startswith("#"))
    return {key: tuple(json.loads(shape)) for key, shape, _ in rows}


def pickle_globals(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    return {arg.replace(" ", ".") for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}


@pytest.fixture(scope="module")
def loaded(official_seg_dir):
    cache = {}

    def get(name: str):
        if name not in cache:
            io = torch.load(official_seg_dir / f"{name}.io.pt", weights_only=True)
            cache[name] = yolov9.load(official_seg_dir / f"{name}.pt"), io, io["input_uint8"].float() / 255
        return cache[name]
    return get


def assert_eval_close(pred: torch.Tensor, proto: torch.Tensor, ref_pred: torch.Tensor, ref_proto: torch.Tensor):
    """pred (B, 4 + nc + nm, A): boxes, scores (relative: they are tiny), raw coefficients; prototypes."""
    assert pred.shape == ref_pred.shape and proto.shape == ref_proto.shape
    torch.testing.assert_close(pred[:, :4], ref_pred[:, :4], atol=BOX_ATOL, rtol=0)
    torch.testing.assert_close(pred[:, 4:4 + NC], ref_pred[:, 4:4 + NC], rtol=SCORE_RTOL, atol=1e-7)
    torch.testing.assert_close(pred[:, 4 + NC:], ref_pred[:, 4 + NC:], atol=COEFFICIENT_ATOL, rtol=0)
    torch.testing.assert_close(proto, ref_proto, atol=PROTO_ATOL, rtol=0)


@pytest.mark.parametrize("name", FULL_SIZE)
def test_full_size_configs_equal_official(official_seg_dir, name):
    official = json.loads((official_seg_dir / "full-size-seg.json").read_text())["models"][name]
    model = build_model(name)
    assert model.task == "segment" and model.branches == (2 if name.startswith("yolov9") else 1)
    assert model.yaml["head"][-1][2] == official["head_type"] and model.head.f == official["head_from"]
    info = model.info()
    assert info["params"] == official["params"] and info["task"] == "segment"
    assert info["gflops"] == pytest.approx(official["gflops_640_eval_mode_unfused_unrounded"], abs=1e-3)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == read_keys(official_seg_dir / f"{name}.full.keys.txt")
    fused = model.eval().fuse().info()
    assert fused["params"] == official["fused_params"] and len(model.state_dict()) == official["fused_state_dict_keys"]
    assert fused["gflops"] == pytest.approx(official["gflops_640_fused_unrounded"], abs=1e-3)


@pytest.mark.parametrize("name", MINI)
def test_official_checkpoint_reproduces_every_branch(official_seg_dir, loaded, name):
    meta = json.loads((official_seg_dir / f"{name}.json").read_text())
    model, io, x = loaded(name)
    assert not model.training and model.task == "segment" and model.names == ["cat", "dog", "bird"]
    assert sum(p.numel() for p in model.parameters()) == meta["param_count"]
    keys = read_keys(official_seg_dir / f"{name}.keys.txt")
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == keys
    assert model.stride.tolist() == io["strides"].tolist()
    prefixes = ["aux_", ""] if model.branches == 2 else [""]  # config order: auxiliary first, main last
    with torch.no_grad():
        pred, proto = model(x)
        every = model(x, all_branches=True)
        train = copy.deepcopy(model).train()(x)  # BatchNorm on batch statistics, as the fixture's train outputs
    assert_eval_close(pred, proto, io["eval_pred"], io["eval_proto"])
    assert len(every) == len(train) == len(prefixes)
    for (branch_pred, branch_proto), (maps, coefficients, prototypes), prefix in zip(every, train, prefixes):
        assert_eval_close(branch_pred, branch_proto, io[f"{prefix}eval_pred"], io[f"{prefix}eval_proto"])
        for level, m in enumerate(maps):
            torch.testing.assert_close(m, io[f"{prefix}train_feats_{level}"], atol=TRAIN_ATOL, rtol=0)
        torch.testing.assert_close(coefficients, io[f"{prefix}train_mc"], atol=TRAIN_ATOL, rtol=0)
        torch.testing.assert_close(prototypes, io[f"{prefix}train_proto"], atol=TRAIN_ATOL, rtol=0)
    assert torch.equal(every[-1][0], pred)


def test_raw_maps_and_decode_give_the_eval_outputs(loaded):
    model, _, x = loaded("yolov9-c-dseg-mini")
    with torch.no_grad():
        raw = model.raw_maps(x)  # the train-mode structure, here with eval-mode BatchNorm
        every = model(x, all_branches=True)
    for b, output in enumerate(raw):
        pred, proto = model.head.decode(output, b)
        assert torch.equal(pred, every[b][0]) and torch.equal(proto, every[b][1])


def test_fuse_keeps_outputs(loaded):
    model, io, x = loaded("gelan-c-seg-mini")
    fused = copy.deepcopy(model).fuse()
    assert fused.is_fused
    with torch.no_grad():
        pred, proto = fused(x)
    assert_eval_close(pred, proto, io["eval_pred"], io["eval_proto"])


def test_strip_official_dual_model_keeps_row_41(official_seg_dir, loaded):
    """The main-branch subgraph of yolov9-c-dseg: gelan-c-dseg's rows, but its prototype row keeps 2 repeats."""
    model, io, x = loaded("yolov9-c-dseg-mini")
    stripped = strip_auxiliary(model)
    assert stripped.branches == 1 and stripped.yaml["head"][-1][2] == "DSegment"
    assert stripped.yaml["yaml_file"] == "model-stripped.yaml" and stripped.yaml["stripped_from"] == "model"
    gelan = read_keys(official_seg_dir / "gelan-c-dseg-mini.keys.txt")
    ours = {k: tuple(v.shape) for k, v in stripped.state_dict().items()}
    extra = sorted(set(ours) - set(gelan))
    assert set(gelan) <= set(ours) and all(ours[k] == gelan[k] for k in gelan)
    assert len(extra) == 36 and all(k.startswith(("model.22.cv2.0.m.1.", "model.22.cv3.0.m.1.")) for k in extra)
    assert stripped.yaml["head"][-4][3] == [32, 32, 16, 2]  # row 22 = official row 41, 2 inner repeats
    with torch.no_grad():
        pred, proto = stripped(x)
    assert_eval_close(pred, proto, io["eval_pred"], io["eval_proto"])


def test_strip_checkpoint_of_a_segmentation_file(official_seg_dir, loaded, tmp_path):
    source = official_seg_dir / "yolov9-c-dseg-mini.pt"
    assert main(["strip", str(source), str(tmp_path / "ours.pt")]) == 0
    ours = torch.load(tmp_path / "ours.pt", weights_only=True)
    assert ours["config"]["yaml_file"] == "yolov9-c-dseg-mini-stripped.yaml"
    assert ours["config"]["stripped_from"] == "yolov9-c-dseg-mini.pt"
    official_layout = strip_checkpoint(source, tmp_path / "official.pt", format="official")
    # the classes the official code resolves: those of an official single-branch DSegment file (whose head
    # also caches its last input shape, a torch.Size)
    assert pickle_globals(official_layout) == pickle_globals(official_seg_dir / "gelan-c-dseg-mini.pt") - {"torch.Size"}
    assert read_official(official_layout).state_dict.keys() == ours["model"].keys()
    _, io, x = loaded("yolov9-c-dseg-mini")
    with torch.no_grad():
        for path in (tmp_path / "ours.pt", official_layout):
            pred, proto = yolov9.load(path)(x)
            assert_eval_close(pred, proto, io["eval_pred"], io["eval_proto"])


def test_method_references_in_official_pickles_stay_inert():
    """Official heads pickle `self.detect = Detect.forward` as getattr(<class>, 'forward'): a name, never looked up."""
    unpickler = RestrictedUnpickler(BytesIO(b""))
    owner = unpickler.find_class("models.yolo", "Detect")
    getattr_standin = unpickler.find_class("builtins", "getattr")
    reference = getattr_standin(owner, "forward")
    assert isinstance(reference, InertReference) and reference.official_global == "models.yolo.Detect.forward"
    assert not callable(reference)
    for bad_owner, name in ((owner, "__class__"), (owner, "_forward"), (owner, "a.b"), (dict, "update"), (1, "real")):
        with pytest.raises(UnsafeCheckpointError, match="getattr"):
            getattr_standin(bad_owner, name)


@pytest.mark.parametrize("name", sorted(OURS))
def test_our_small_configs_build_and_run(name):
    model = build_model(name, nc=NC)
    assert model.task == "segment" and model.branches == OURS[name] and model.stride.tolist() == [8, 16, 32]
    b, h, w = 2, 96, 64
    anchors = sum((h // s) * (w // s) for s in (8, 16, 32))
    x = torch.rand(b, 3, h, w)
    train = model.train()(x)
    assert len(train) == OURS[name]
    for maps, coefficients, prototypes in train:
        assert [tuple(m.shape) for m in maps] == [(b, 64 + NC, h // s, w // s) for s in (8, 16, 32)]
        assert coefficients.shape == (b, NM, anchors) and prototypes.shape == (b, NM, h // 4, w // 4)
    model.eval()
    with torch.no_grad():
        pred, proto = model(x)
        every = model(x, all_branches=True)
    assert pred.shape == (b, 4 + NC + NM, anchors) and proto.shape == (b, NM, h // 4, w // 4)
    assert len(every) == OURS[name] and torch.equal(every[-1][0], pred)
    assert 0 <= pred[:, 4:4 + NC].min() and pred[:, 4:4 + NC].max() <= 1


@pytest.mark.parametrize("size", ["t", "s"])
def test_strip_of_our_dual_config_is_our_gelan_config(size):
    model = build_model(f"yolov9-{size}-dseg", nc=NC)
    randomise_batchnorm(model, seed=3)
    stripped = strip_auxiliary(model.eval())
    gelan = build_model(f"gelan-{size}-dseg", nc=NC)
    assert stripped.yaml["backbone"] + stripped.yaml["head"] == gelan.yaml["backbone"] + gelan.yaml["head"]
    assert {k: v.shape for k, v in stripped.state_dict().items()} == {k: v.shape for k, v in gelan.state_dict().items()}
    assert stripped.yaml["stripped_from"] == f"yolov9-{size}-dseg.yaml"
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        (pred, proto), (stripped_pred, stripped_proto) = model(x), stripped(x)
    assert (pred - stripped_pred).abs().max() <= 1e-4 and (proto - stripped_proto).abs().max() <= 1e-5


def test_info_command_prints_the_table(capsys):
    assert main(["info", "gelan-c-seg"]) == 0
    out = capsys.readouterr().out
    assert "Segment" in out and "segment model" in out
    assert "27,634,720 parameters, 146.0 GFLOPs" in out and "27,423,808 parameters, 144.5 GFLOPs" in out
