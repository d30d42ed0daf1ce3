"""Small models for the deploy tests: t-size configs at half width and one RepNCSP repeat, with BN statistics
randomised (like the official fixtures) so outputs vary across anchors and classes; and datasets labelled with a
model's own detections (a non-trivial mAP for comparing runtimes)."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from yolov9 import DetectionModel, build_model
from yolov9.cfg import load_model_config

CHANNEL_ARGS = {"Conv": 1, "AConv": 1, "ADown": 1, "ELAN1": 3, "RepNCSPELAN4": 3, "SPPELAN": 2}


def half_width_config(name: str, nc: int) -> dict:
    """A bundled config with every channel count halved and RepNCSPELAN4 depth 1."""
    config = load_model_config(name)
    for row in config["backbone"] + config["head"]:
        count = CHANNEL_ARGS.get(row[2], 0)
        row[3] = [a // 2 for a in row[3][:count]] + row[3][count:]
        if row[2] == "RepNCSPELAN4":
            row[3][3] = 1
    config["nc"] = nc
    return config


def tiny_model(name: str = "gelan-t", nc: int = 3, seed: int = 0) -> DetectionModel:
    """Eval-mode half-width model with randomised BatchNorm statistics and class biases."""
    model = build_model(half_width_config(name, nc), names=[f"class{i}" for i in range(nc)])
    generator = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean = torch.randn(n, generator=generator) * 0.1
            m.running_var = torch.rand(n, generator=generator) + 0.5
            m.weight.data = torch.rand(n, generator=generator) + 0.5
            m.bias.data = torch.randn(n, generator=generator) * 0.1
    for b in range(model.branches):
        for cls_seq in model.head.branch_modules(b)[1]:
            cls_seq[-1].bias.data = torch.randn(cls_seq[-1].bias.shape, generator=generator)
    return model.eval()


def pseudo_labelled(root: Path, model: DetectionModel, imgsz: int, conf: float = 0.3) -> Path:
    """A copy of the dataset of `write_dataset` in `root` with `model`'s own detections as its labels, and its YAML:
    the model scores mAP ~1 on it in PyTorch, so any runtime that changes its outputs shows in the mAP."""
    from yolov9.engine.predictor import predict

    images = sorted((root / "images").iterdir())
    target = root / f"pseudo-{id(model)}"
    for folder in ("images", "labels"):
        (target / folder).mkdir(parents=True)
    for path, result in zip(images, predict(model, [str(p) for p in images], imgsz=imgsz, conf=conf,
                                            progress=False)):
        (target / "images" / path.name).write_bytes(path.read_bytes())
        rows = [f"{int(c)} {x:.6f} {y:.6f} {w:.6f} {h:.6f}" for c, (x, y, w, h) in
                zip(result.boxes.cls, result.boxes.xywhn)]
        (target / "labels" / f"{path.stem}.txt").write_text("\n".join(rows) + "\n")
    names = [f"class{i}" for i in range(model.nc)]
    data = target.with_suffix(".yaml")
    data.write_text(f"path: {target}\ntrain: images\nval: images\nnames: {names}\n")
    return data
