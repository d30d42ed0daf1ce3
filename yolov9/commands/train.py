"""`yolov9 train --model M --data D ...`: the CLI face of `yolov9.engine.trainer.train` (same option names)."""
from __future__ import annotations

import argparse

from yolov9.engine.optim import LR_SCHEDULES, OPTIMIZERS
from yolov9.engine.train_options import TrainOptions

DEFAULTS = TrainOptions()


def _hyp_value(text: str):
    key, _, value = text.partition("=")
    if not value:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    import yaml

    return key, yaml.safe_load(value)


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a GELAN or YOLOv9 model (any number of head branches)")
    p.add_argument("--model", help="bundled name (yolov9-s), model YAML, or checkpoint to start from")
    p.add_argument("--data", help="dataset YAML")
    p.add_argument("--weights", help="starting weights (ours or official .pt), copied by name and shape")
    p.add_argument("--resume", nargs="?", const=True, default=False, help="continue the latest run, or this last.pt")
    for name in ("epochs", "imgsz", "batch", "workers", "close_mosaic", "seed", "patience", "save_period",
                 "max_bad_steps"):
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(DEFAULTS, name))
    p.add_argument("--time", type=float, default=None,
                   help="training budget in minutes: --epochs becomes an upper bound and the LR schedule fits it")
    p.add_argument("--device", default=None, help="cpu, 0, cuda:1 (default: GPU if present)")
    p.add_argument("--hyp", default=None, help="hyperparameter YAML (default: bundled scratch-high)")
    p.add_argument("--set", dest="hyp_overrides", action="append", type=_hyp_value, default=[],
                   metavar="KEY=VALUE", help="override one hyperparameter, e.g. --set lr0=0.02 (repeatable)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=DEFAULTS.optimizer)
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=DEFAULTS.lr_schedule)
    p.add_argument("--no-amp", dest="amp", action="store_false", help="disable mixed precision on CUDA")
    p.add_argument("--freeze", type=int, nargs="+", default=[0], help="first N layers, or several layer indices")
    p.add_argument("--single-cls", action="store_true")
    p.add_argument("--multi-scale", action="store_true")
    p.add_argument("--no-deterministic", dest="deterministic", action="store_false")
    p.add_argument("--project", default=DEFAULTS.project)
    p.add_argument("--name", default=DEFAULTS.name)
    p.add_argument("--exist-ok", action="store_true")
    p.add_argument("--no-val", dest="val", action="store_false")
    p.add_argument("--no-plots", dest="plots", action="store_false")
    p.add_argument("--sync-bn", action="store_true")
    p.add_argument("--cache", choices=("ram",), default=None)
    p.add_argument("--quiet", dest="verbose", action="store_false")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from yolov9.api import YOLOv9
    from yolov9.engine.trainer import train

    options = {k: v for k, v in vars(args).items() if k not in ("func", "command", "model", "data")}
    options["freeze"] = options["freeze"][0] if len(options["freeze"]) == 1 else options["freeze"]
    options["hyp_overrides"] = dict(options["hyp_overrides"])
    if args.resume:
        train(None, data=args.data, **{k: v for k, v in options.items() if k in ("resume", "device")})
        return 0
    result = YOLOv9(args.model or "yolov9-t", seed=args.seed).train(args.data, **options)
    print(f"results saved to {result['save_dir']}")
    return 0
