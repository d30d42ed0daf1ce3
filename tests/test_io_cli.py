"""`yolov9 convert` and `yolov9 strip` (our format and the official converted-file layout)."""
from __future__ import annotations

import pickletools
import zipfile

import torch

from yolov9.cli import main
from yolov9.io.official import read_official


def pickle_globals(path) -> set[str]:
    """'module name' of every GLOBAL opcode in the archive's data.pkl (protocol 2, as torch writes)."""
    with zipfile.ZipFile(path) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    return {arg.replace(" ", ".") for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}


def test_convert_official_to_ours(tmp_path, official_dir, capsys):
    source = official_dir / "yolov9-c-mini-converted.pt"
    target = tmp_path / "ours.pt"
    assert main(["convert", str(source), str(target)]) == 0
    raw = torch.load(target, weights_only=True)
    official = read_official(source)
    assert raw["names"] == ["cat", "dog", "bird"] and raw["model"].keys() == official.state_dict.keys()
    assert all(torch.equal(raw["model"][k], v) for k, v in official.state_dict.items())  # fp16 kept, bit for bit
    assert raw["config"] == official.config
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    assert main(["convert", str(bad), str(tmp_path / "out.pt")]) == 2
    assert "bad.pt: not a PyTorch checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "out.pt").exists()


def test_strip_official_to_official_layout(tmp_path, official_dir):
    target = tmp_path / "yolov9-c-mini-converted.pt"
    assert main(["strip", str(official_dir / "yolov9-c-mini.pt"), str(target), "--format", "official"]) == 0
    expected = official_dir / "yolov9-c-mini-converted.pt"
    assert pickle_globals(target) == pickle_globals(expected)  # the classes the official code resolves
    ours, official = read_official(target), read_official(expected)
    assert ours.config == official.config and ours.names == official.names and ours.stride == official.stride
    assert list(ours.state_dict) == list(official.state_dict)
    assert all(torch.equal(ours.state_dict[k], v) for k, v in official.state_dict.items())


def test_strip_to_our_format(tmp_path, official_dir):
    target = tmp_path / "stripped.pt"
    assert main(["strip", str(official_dir / "yolov9-c-mini.pt"), str(target)]) == 0
    raw = torch.load(target, weights_only=True)
    official = read_official(official_dir / "yolov9-c-mini-converted.pt").state_dict
    assert all(torch.equal(raw["model"][k], v) for k, v in official.items()) and raw["model"].keys() == official.keys()
