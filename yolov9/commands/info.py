"""`yolov9 info CONFIG`: layer table, parameters and GFLOPs (unfused and fused)."""
from __future__ import annotations

import argparse

from yolov9.models.detection_model import DetectionModel
from yolov9.runtime import load_model, require_trainable


def register(subparsers) -> None:
    p = subparsers.add_parser("info", help="print a model's layer table, parameters and GFLOPs")
    p.add_argument("config", help="bundled name (e.g. yolov9-c), model YAML path, or checkpoint (.pt)")
    p.add_argument("--nc", type=int, default=None, help="override the number of classes")
    p.add_argument("--imgsz", type=int, default=640, help="image size for the GFLOPs figure")
    p.set_defaults(func=run)


def layer_table(model: DetectionModel) -> str:
    lines = [f"{'':>3} {'from':>22} {'n':>2} {'params':>10}  {'module':<14} arguments"]
    rows = model.yaml["backbone"] + model.yaml["head"]
    for module, row in zip(model.model, rows):
        lines.append(f"{module.i:>3} {str(module.f):>22} {row[1]:>2} {module.np:>10,}  {module.type:<14} {row[3]}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    model = require_trainable(load_model(args.config, nc=args.nc), "be described layer by layer")
    print(layer_table(model))
    unfused = model.info(args.imgsz)
    fused = model.eval().fuse().info(args.imgsz)
    name = model.yaml.get("yaml_file", "model")
    print(f"{name} summary: {unfused['task']} model, {unfused['layers']} layers, {unfused['branches']} head "
          f"branch(es), nc={unfused['nc']}, strides {unfused['strides']}")
    print(f"  unfused: {unfused['params']:,} parameters, {unfused['gflops']:.1f} GFLOPs at {args.imgsz}")
    print(f"  fused:   {fused['params']:,} parameters, {fused['gflops']:.1f} GFLOPs at {args.imgsz}")
    return 0
