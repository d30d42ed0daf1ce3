"""`yolov9 demo`: the README's first command. Train yolov9-t (with its PGI branch) on the bundled "trees" photos
on the CPU for a fixed, seeded number of epochs (the same weights and mAP however fast or busy the machine), validate,
strip + fuse + export to ONNX, predict on the val images. `--task segment`: the same with a small segmentation
model on the bundled "nuclei" image (Box + Mask table, ONNX with prototypes, mask overlays)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from yolov9.cfg import HYP_DIR
from yolov9.datasets import nuclei
from yolov9.errors import DatasetError

DEFAULT_DATA = Path("datasets/trees/trees.yaml")
DEMO_EPOCHS = 40  # about 8 minutes of training on a 2-core CPU (README); the same result at any speed
SEGMENT_EPOCHS = 30  # gelan-t-seg on the nuclei tiles: a few minutes on a 2-core CPU (docs/datasets.md)
PRESETS = {  # per task: the options the user did not give
    "detect": {"data": str(DEFAULT_DATA), "model": "yolov9-t", "epochs": DEMO_EPOCHS, "imgsz": 320, "conf": 0.1},
    "segment": {"data": "datasets/nuclei/nuclei.yaml", "model": "gelan-t-seg", "epochs": SEGMENT_EPOCHS,
                "imgsz": nuclei.DEMO_IMGSZ, "conf": 0.25},
}


class Given(argparse.Action):
    """Store the value and remember that the user gave it, so that the task's preset leaves it alone."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.given = namespace.given | {self.dest}


def register(subparsers) -> None:
    detect = PRESETS["detect"]
    p = subparsers.add_parser("demo", help="train, validate, export and predict on a bundled dataset (trees; "
                                           "--task segment: nuclei)")
    p.add_argument("--task", choices=tuple(PRESETS), default="detect",
                   help="detect (trees, yolov9-t) or segment (nuclei, gelan-t-seg); the defaults below are detect's")
    p.add_argument("--data", default=detect["data"], action=Given, help="dataset YAML (default: the bundled set)")
    p.add_argument("--model", default=detect["model"], action=Given,
                   help="model config (default: yolov9-t, with its PGI branch)")
    p.add_argument("--epochs", type=int, default=detect["epochs"], action=Given,
                   help=f"epochs to train (default: {DEMO_EPOCHS}; segment: {SEGMENT_EPOCHS})")
    p.add_argument("--minutes", type=float, default=None,
                   help="train for this many minutes instead (--epochs becomes an upper bound; the result then "
                        "depends on the machine's speed)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, data order and augmentation")
    p.add_argument("--imgsz", type=int, default=detect["imgsz"], action=Given)
    p.add_argument("--batch", type=int, default=4, help="small batches: more optimizer and BatchNorm updates")
    p.add_argument("--hyp", default=str(HYP_DIR / "demo-cpu.yaml"), help="hyperparameters of the short CPU run")
    p.add_argument("--conf", type=float, default=detect["conf"], action=Given,
                   help="confidence threshold of the annotated predictions")
    p.add_argument("--device", default="cpu")
    p.add_argument("--project", default="runs/demo")
    p.set_defaults(func=run, given=frozenset())


def apply_preset(args: argparse.Namespace) -> argparse.Namespace:
    """The task's defaults for every preset option the user did not give."""
    for key, value in PRESETS[args.task].items():
        if key not in args.given:
            setattr(args, key, value)
    return args


def run(args: argparse.Namespace) -> int:
    from yolov9.engine.predictor import predict
    from yolov9.engine.trainer import train
    from yolov9.export.exporter import export
    from yolov9.models import build_model

    args = apply_preset(args)
    if not Path(args.data).is_file():
        raise DatasetError(f"{args.data}: dataset YAML not found (run `make demo` from the repository root, "
                           "or pass --data)")
    started = time.time()
    result = train(build_model(args.model, seed=args.seed), data=args.data, epochs=args.epochs, time=args.minutes,
                   imgsz=args.imgsz, batch=args.batch, hyp=args.hyp, device=args.device, project=args.project,
                   name="train" if args.task == "detect" else args.task, close_mosaic=0, seed=args.seed)
    trained = time.time()
    save_dir = Path(result["save_dir"])
    best = save_dir / "weights" / "best.pt"
    onnx_path = export(best, format="onnx", imgsz=args.imgsz, file=save_dir / "weights" / "best.onnx")
    val_images = _val_images(args.data)
    predictions = predict(onnx_path, val_images, imgsz=args.imgsz, conf=args.conf, save_dir=save_dir / "predict")
    metrics = result["metrics"]
    print()
    print(f"demo finished in {(time.time() - started) / 60:.1f} min (training {(trained - started) / 60:.1f} min, "
          f"{len(result['results'])} epochs, best epoch {result['best_epoch'] + 1})")
    for label, prefix in ((" box", ""), (" mask", "mask/")) if args.task == "segment" else (("", ""),):
        print(f"  val{label} mAP50 {metrics[prefix + 'mAP50']:.3f}  mAP50-95 {metrics[prefix + 'mAP50-95']:.3f}  "
              f"P {metrics[prefix + 'precision']:.3f}  R {metrics[prefix + 'recall']:.3f}  "
              f"({args.model}, {args.imgsz} px, {args.data})")
    print(f"  weights:          {best} (EMA, fp16; {save_dir / 'weights' / 'last.pt'})")
    print(f"  ONNX (stripped):  {onnx_path}")
    print(f"  plots:            {save_dir} (results.png, PR_curve.png, confusion_matrix.png, train_batch*.jpg)")
    overlays = " with mask overlays" if args.task == "segment" else ""
    print(f"  annotated images: {save_dir / 'predict'} ({len(predictions)} images{overlays}, "
          f"{sum(len(r.boxes) for r in predictions)} {'instances' if overlays else 'boxes'})")
    return 0


def _val_images(data: str) -> list[str]:
    from yolov9.data import load_data_config

    return [str(p) for p in load_data_config(data)["val"]]
