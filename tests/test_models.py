"""Architecture parity with the official implementation: sizes, FLOPs, state-dict keys, outputs, fuse, strip."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from yolov9 import build_model, strip_auxiliary
from yolov9.errors import ConfigError, YOLOv9Error

# facts §1.5 / §8: (params unfused, GFLOPs unfused, params fused, GFLOPs fused, state-dict keys) at nc=80, 640x640
OFFICIAL_SIZES = {
    "gelan-t": (2_442_640, 10.1, 2_407_632, 9.8, 1339),
    "gelan-s": (7_226_208, 27.0, 7_105_888, 26.4, 1339),
    "gelan-m": (20_124_000, 77.4, 19_978_672, 76.3, 907),
    "gelan-c": (25_498_752, 103.5, 25_288_768, 102.1, 937),
    "gelan-e": (58_114_432, 192.5, 57_345_920, 189.0, 1811),
    "yolov9-t": (3_717_680, 16.5, 3_674_576, 16.2, 1772),
    "yolov9-s": (9_804_512, 39.9, 9_659_168, 39.1, 1772),
    "yolov9-m": (32_878_432, 133.0, 32_667_400, 131.3, 1412),
    "yolov9-c": (51_182_080, 239.9, 50_880_768, 237.6, 1460),
    "yolov9-e": (69_529_664, 245.5, 68_669_632, 241.4, 2172),
}
DOCS = Path(__file__).resolve().parents[2] / "shared" / "docs"


def randomise_batchnorm(model: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


@pytest.mark.parametrize("name", sorted(OFFICIAL_SIZES))
def test_params_gflops_and_key_count_equal_official(name):
    params, gflops, fused_params, fused_gflops, n_keys = OFFICIAL_SIZES[name]
    model = build_model(name)
    info = model.info()
    assert info["params"] == params
    assert abs(info["gflops"] - gflops) <= 0.1
    assert len(model.state_dict()) == n_keys
    assert info["branches"] == (2 if name.startswith("yolov9") else 1)
    fused = model.eval().fuse().info()
    assert fused["params"] == fused_params
    assert abs(fused["gflops"] - fused_gflops) <= 0.1


def read_official_keys(path: Path) -> dict[str, tuple]:
    keys = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^(\S+) \(([\d, ]*)\)$", line.strip())
        if match:
            keys[match.group(1)] = tuple(int(d) for d in match.group(2).split(",") if d.strip())
    return keys


@pytest.mark.parametrize("name", ["gelan-c", "yolov9-c"])
def test_state_dict_keys_and_shapes_equal_official(name):
    path = DOCS / f"official-keys-{name}.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    official = read_official_keys(path)
    ours = {k: tuple(v.shape) for k, v in build_model(name).state_dict().items()}
    assert len(official) == {"gelan-c": 937, "yolov9-c": 1460}[name]
    assert ours == official


@pytest.mark.parametrize("shape", [(1, 3, 256, 320), (2, 3, 160, 96)])
def test_eval_and_train_output_layout(shape):
    model = build_model("yolov9-t", nc=5)
    b, _, h, w = shape
    x = torch.rand(shape)
    maps = model.train()(x)
    assert len(maps) == 2 and all(len(branch) == 3 for branch in maps)
    for branch in maps:
        for level, stride in zip(branch, (8, 16, 32)):
            assert level.shape == (b, 64 + 5, h // stride, w // stride)
    model.eval()
    with torch.no_grad():
        out = model(x)
        both = model(x, all_branches=True)
    anchors = sum((h // s) * (w // s) for s in (8, 16, 32))
    assert out.shape == (b, 4 + 5, anchors)
    assert len(both) == 2 and torch.equal(both[1], out)
    scores = out[:, 4:]
    assert scores.min() >= 0 and scores.max() <= 1
    assert model.stride.tolist() == [8, 16, 32]


def test_decoded_boxes_follow_anchor_grid():
    """With all box logits equal, every side distance is the mean bin 7.5 cells: w = h = 15 * stride."""
    model = build_model("gelan-t", nc=2).eval()
    head = model.head
    maps = [torch.zeros(1, head.no, 32 // s * 2, 32 // s * 2) for s in (8, 16, 32)]
    out = head.decode(maps)
    strides = torch.cat([torch.full((m.shape[2] * m.shape[3],), float(s)) for m, s in zip(maps, (8, 16, 32))])
    assert torch.allclose(out[0, 2], 15 * strides) and torch.allclose(out[0, 3], 15 * strides)
    first_level = maps[0].shape[2] * maps[0].shape[3]
    assert torch.allclose(out[0, 0, :2], torch.tensor([4.0, 12.0]))  # cell centres (x + 0.5) * 8
    assert torch.allclose(out[0, 4:], torch.full_like(out[0, 4:], 0.5))
    assert out.shape[2] == first_level + 16 + 4


@pytest.mark.parametrize("name", ["gelan-s", "yolov9-t", "yolov9-c"])
def test_fuse_keeps_outputs(name):
    model = build_model(name, nc=7)
    randomise_batchnorm(model)
    model.eval()
    x = torch.rand(1, 3, 160, 224)
    with torch.no_grad():
        before = model(x, all_branches=True)
        model.fuse()
        after = model(x, all_branches=True)
    assert model.is_fused
    for a, b in zip(before, after):
        assert (a - b).abs().max().item() <= 1e-4


@pytest.mark.parametrize("name,nc", [("yolov9-t", 80), ("yolov9-s", 3), ("yolov9-m", 80), ("yolov9-c", 12),
                                     ("yolov9-e", 80), ("yolov9-cf", 5)])
def test_strip_auxiliary_gives_gelan(name, nc):
    model = build_model(name, nc=nc)
    randomise_batchnorm(model, seed=1)
    gelan = build_model(name.replace("yolov9-cf", "gelan-c").replace("yolov9", "gelan"), nc=nc)
    stripped = strip_auxiliary(model)
    assert {k: v.shape for k, v in stripped.state_dict().items()} == {k: v.shape for k, v in gelan.state_dict().items()}
    assert stripped.info()["params"] == gelan.info()["params"]
    assert stripped.yaml["backbone"] + stripped.yaml["head"] == gelan.yaml["backbone"] + gelan.yaml["head"]
    assert stripped.branches == 1
    model.eval(), stripped.eval()
    x = torch.rand(1, 3, 128, 96)
    with torch.no_grad():
        assert (model(x) - stripped(x)).abs().max().item() <= 1e-5


def test_strip_keeps_leading_silence_only_when_named():
    assert build_model("yolov9-c").yaml["backbone"][0][2] == "Silence"
    assert strip_auxiliary(build_model("yolov9-c", nc=1)).yaml["backbone"][0][2] == "Conv"
    assert strip_auxiliary(build_model("yolov9-e", nc=1)).yaml["backbone"][0][2] == "Silence"


def test_strip_of_fused_model_matches():
    model = build_model("yolov9-t", nc=4)
    randomise_batchnorm(model, seed=2)
    model.eval().fuse()
    stripped = strip_auxiliary(model)
    assert stripped.is_fused
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert (model(x) - stripped(x)).abs().max().item() <= 1e-5


def test_user_config_dict_and_nc_override():
    cfg = build_model("gelan-t").yaml
    cfg["activation"] = "nn.ReLU()"
    model = build_model(cfg, nc=3)
    assert model.nc == 3 and model.names == ["0", "1", "2"]
    assert any(isinstance(m, nn.ReLU) for m in model.modules())
    assert not any(isinstance(m, nn.SiLU) for m in model.modules())
    named = build_model("gelan-t", names=["cat", "dog"])
    assert named.nc == 2 and named.names == ["cat", "dog"]


def bad_config(**changes):
    cfg = build_model("gelan-t").yaml
    cfg.update(changes)
    return cfg


@pytest.mark.parametrize("mutate,message", [
    (lambda c: c["backbone"].__setitem__(2, [-1, 1, "Bogus", [32]]), r"layer 2 \(Bogus\): unknown module 'Bogus'"),
    (lambda c: c["head"].__setitem__(2, [[-1, 40], 1, "Concat", [1]]), r"layer 11 \(Concat\): `from` 40 does not name"),
    (lambda c: c.pop("backbone"), r"missing the `backbone` list"),
    (lambda c: c.pop("nc"), r"missing `nc`"),
    (lambda c: c["backbone"].__setitem__(0, [-1, 1, "Conv"]), r"layer 0: a row must be \[from, repeats, module, args\]"),
    (lambda c: c["head"].pop(), r"last row must be a detection head"),
    (lambda c: c.__setitem__("activation", "__import__('os').system('true')"), r"activation .* is not supported"),
])
def test_bad_configs_raise_clear_errors(mutate, message):
    cfg = build_model("gelan-t").yaml
    mutate(cfg)
    with pytest.raises(ConfigError, match=message):
        build_model(cfg)


def test_unknown_bundled_name_and_bad_yaml_file(tmp_path):
    with pytest.raises(YOLOv9Error, match="no such model config"):
        build_model("gelan-x")
    bad = tmp_path / "bad.yaml"
    bad.write_text("nc: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        build_model(bad)


def test_build_model_is_seeded_and_leaves_the_global_generator_alone():
    state = torch.get_rng_state()
    first, again, other = (build_model("gelan-t", seed=s).state_dict() for s in (0, 0, 1))
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["model.0.conv.weight"], other["model.0.conv.weight"])
