"""`yolov9 train --model M --data D ...`: the CLI face of `yolov9.engine.trainer.train` (same option names)."""
from __future__ import annotations

import argparse

from yolov9.commands.arguments import add_run_folder_options
from yolov9.engine.optim import LR_SCHEDULES, OPTIMIZERS
from yolov9.engine.recipe import AUTO
from yolov9.engine.train_options import TrainOptions

DEFAULTS = TrainOptions()


def _hyp_value(text: str):
    key, _, value = text.partition("=")
    if not value:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    import yaml

    return key, yaml.safe_load(value)


INTEGER_OPTIONS = {
    "epochs": "number of epochs (an upper bound with --time)",
    "imgsz": "training image size in pixels (rounded up to a multiple of the model stride)",
    "batch": "total batch size (over all processes under torchrun)",
    "workers": "data loader worker processes",
    "close_mosaic": "turn mosaic off for the last N epochs (default: min(15, 20%% of --epochs))",
    "seed": "seed of the initial weights, data order and augmentation",
    "patience": "stop after N epochs without fitness improvement (0: never)",
    "save_period": "also keep weights/epoch<N>.pt every N epochs (-1: never)",
    "max_bad_steps": "consecutive non-finite losses / gradients before giving up",
}


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a GELAN or YOLOv9 model (any number of head branches)",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="yolov9-t", help="bundled name, model YAML, or checkpoint to start from")
    p.add_argument("--data", help="dataset YAML")
    p.add_argument("--weights", help="starting weights (ours or official .pt), copied by name and shape")
    p.add_argument("--resume", nargs="?", const=True, default=False, help="continue the latest run, or this last.pt")
    for name, text in INTEGER_OPTIONS.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(DEFAULTS, name), help=text)
    p.add_argument("--time", type=float, default=None,
                   help="training budget in minutes: --epochs becomes an upper bound and the LR schedule fits it")
    p.add_argument("--device", default=None, help="cpu, 0, cuda:1 (default: GPU if present)")
    p.add_argument("--hyp", default=DEFAULTS.hyp,
                   help="hyperparameter YAML or bundled name; auto: scratch-high from 100 epochs, short-run below "
                        "(docs/train.md)")
    p.add_argument("--set", dest="hyp_overrides", action="append", type=_hyp_value, default=[],
                   metavar="KEY=VALUE", help="override one hyperparameter, e.g. --set lr0=0.02 (repeatable)")
    p.add_argument("--optimizer", choices=(AUTO, *OPTIMIZERS), default=DEFAULTS.optimizer,
                   help="optimizer (auto: SGD, the official one)")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=DEFAULTS.lr_schedule, help="learning-rate schedule")
    p.add_argument("--no-amp", dest="amp", action="store_false", help="disable mixed precision on CUDA")
    p.add_argument("--freeze", type=int, nargs="+", default=[0], help="first N layers, or several layer indices")
    p.add_argument("--single-cls", action="store_true", help="train every class as one")
    p.add_argument("--no-overlap", dest="overlap_mask", action="store_false",
                   help="segmentation: one mask target per instance instead of one overlapping map per image")
    p.add_argument("--multi-scale", action="store_true", help="random image size in [0.5, 1.5] x imgsz per batch")
    p.add_argument("--no-deterministic", dest="deterministic", action="store_false",
                   help="allow non-deterministic (faster) CUDA kernels")
    p.add_argument("--strict", action="store_true", help="any dataset problem (bad image or label row) is an error")
    add_run_folder_options(p, DEFAULTS.project)
    p.add_argument("--no-val", dest="val", action="store_false", help="no validation")
    p.add_argument("--no-plots", dest="plots", action="store_false", help="no plots")
    p.add_argument("--sync-bn", action="store_true", help="synchronised BatchNorm under torchrun")
    p.add_argument("--cache", choices=("ram",), default=None, help="decode every image once into RAM")
    p.add_argument("--quiet", dest="verbose", action="store_false", help="no progress bars and epoch lines")
    p.add_argument("--mlflow", action="store_true",
                   help="log to MLflow (pip install 'yolov9[loggers]'): MLFLOW_TRACKING_URI, else a local store "
                        "<project>/mlflow.db; also on when MLFLOW_TRACKING_URI is set")
    p.add_argument("--wandb", action="store_true",
                   help="log to Weights & Biases (pip install 'yolov9[loggers]'), offline into <run>/wandb unless "
                        "WANDB_API_KEY or WANDB_MODE is set (which also turns it on)")
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
    result = YOLOv9(args.model, seed=args.seed).train(args.data, **options)
    print(f"results saved to {result['save_dir']}")
    return 0
