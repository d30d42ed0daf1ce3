"""`yolov9 demo`: the README's first command. Train yolov9-t (with its PGI branch) on the bundled "trees" photos
on the CPU within a time budget, validate, strip + fuse + export to ONNX, predict on the val images."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from yolov9.cfg import HYP_DIR
from yolov9.errors import DatasetError

DEFAULT_DATA = Path("datasets/trees/trees.yaml")


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="train, validate, export and predict on the bundled trees dataset")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="dataset YAML (default: the bundled trees)")
    p.add_argument("--model", default="yolov9-t", help="model config (default: yolov9-t, with its PGI branch)")
    p.add_argument("--minutes", type=float, default=8.0, help="training budget in minutes (default: 8)")
    p.add_argument("--epochs", type=int, default=60, help="upper bound on epochs (the budget usually ends first)")
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--batch", type=int, default=4, help="small batches: more optimizer and BatchNorm updates")
    p.add_argument("--hyp", default=str(HYP_DIR / "demo-cpu.yaml"), help="hyperparameters of the short CPU run")
    p.add_argument("--conf", type=float, default=0.1, help="confidence threshold of the annotated predictions")
    p.add_argument("--device", default="cpu")
    p.add_argument("--project", default="runs/demo")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from yolov9.engine.predictor import predict
    from yolov9.engine.trainer import train
    from yolov9.export.exporter import export
    from yolov9.models import build_model

    if not Path(args.data).is_file():
        raise DatasetError(f"{args.data}: dataset YAML not found (run `make demo` from the repository root, "
                           "or pass --data)")
    started = time.time()
    result = train(build_model(args.model), data=args.data, epochs=args.epochs, time=args.minutes,
                   imgsz=args.imgsz, batch=args.batch, hyp=args.hyp, device=args.device, project=args.project,
                   name="train", close_mosaic=0)
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
    print(f"  val mAP50 {metrics['mAP50']:.3f}  mAP50-95 {metrics['mAP50-95']:.3f}  "
          f"P {metrics['precision']:.3f}  R {metrics['recall']:.3f}  ({args.model}, {args.imgsz} px, {args.data})")
    print(f"  weights:          {best} (EMA, fp16; {save_dir / 'weights' / 'last.pt'})")
    print(f"  ONNX (stripped):  {onnx_path}")
    print(f"  plots:            {save_dir} (results.png, PR_curve.png, confusion_matrix.png, train_batch*.jpg)")
    print(f"  annotated images: {save_dir / 'predict'} ({len(predictions)} images, "
          f"{sum(len(r.boxes) for r in predictions)} boxes)")
    return 0


def _val_images(data: str) -> list[str]:
    from yolov9.data import load_data_config

    return [str(p) for p in load_data_config(data)["val"]]
