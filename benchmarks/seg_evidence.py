"""Segmentation evidence in one run: our seg models vs Ultralytics yolov9c-seg (its smallest YOLOv9 seg config).

(a) Loss: forward + backward of one loss call on the same head outputs and targets (a gelan-c-seg / yolov9c-seg
    head: 3 levels, 32 prototypes at 1/4, overlap masks): our SegmentationLoss vs Ultralytics v8SegmentationLoss,
    rounds interleaved, ratio ours / Ultralytics (below 1.0: we are faster).
(b) Training speed and (c) accuracy at an equal budget: every contender trains from scratch on the same generated
    digits-on-photos set with instance masks (`yolov9 dataset digits --masks`), same image size, batch and seed,
    and the same number of epochs or, with --minutes M, the same wall-clock budget (each trainer fits its epochs
    and LR schedule into M minutes: ours `time=M`, Ultralytics `time=M/60` hours), each in a fresh subprocess,
    contenders interleaved round by round (`--repeats`). Images/s are those of
    the training epochs after the first. The best weights of every contender are scored by ONE evaluator, ours
    (`yolov9 val`: boxes and masks, masks at the original resolution; Ultralytics through its own dynamic ONNX
    export); Ultralytics' own validator is reported beside it.

Ours trains with cfg/hyp/demo-cpu.yaml (nbs = batch); Ultralytics with its own defaults or, with
--same-optimizer, SGD lr0 0.01 and nbs = batch. Prints a markdown table (and, unless --quick, writes it to
benchmarks/results/seg_evidence[_seedS].md / .json).

    YOLO_OFFLINE=1 .venv-bench/bin/python benchmarks/seg_evidence.py [--quick] [--seed S] [--same-optimizer]
        [--epochs N | --minutes M]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("YOLO_OFFLINE", "1")

import torch  # noqa: E402

from loss import random_targets, summary, timed  # noqa: E402  (the detection loss benchmark's helpers)
from pgi_evidence import absolute_data_yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PEER = "ultralytics-yolov9c-seg"
CONTENDERS = ("gelan-t-seg", "yolov9-t-dseg", "gelan-c-seg", PEER)
STRIDES, PROTOTYPES, MASK_RATIO, REG_CHANNELS = (8, 16, 32), 32, 4, 64


# (a) the loss -------------------------------------------------------------------------------------------------
def head_outputs(batch: int, nc: int, imgsz: int, generator: torch.Generator) -> tuple:
    """Raw train-mode outputs of one seg branch, as leaves: maps [(B, 64 + nc, H/s, W/s)], coefficients
    (B, 32, A), prototypes (B, 32, H/4, W/4)."""
    maps = [torch.randn(batch, REG_CHANNELS + nc, imgsz // s, imgsz // s, generator=generator).requires_grad_(True)
            for s in STRIDES]
    anchors = sum(m.shape[2] * m.shape[3] for m in maps)
    coefficients = torch.randn(batch, PROTOTYPES, anchors, generator=generator).requires_grad_(True)
    side = imgsz // MASK_RATIO
    prototypes = torch.randn(batch, PROTOTYPES, side, side, generator=generator).requires_grad_(True)
    return maps, coefficients, prototypes


def overlap_masks(targets: torch.Tensor, batch: int, side: int) -> torch.Tensor:
    """Targets (n, 6) sorted by image -> (B, side, side) maps, value k + 1 inside the box of the image's k-th row
    (the overlap layout both losses read; later rows win where boxes overlap)."""
    image = targets[:, 0].long()
    slot = torch.arange(len(image)) - torch.searchsorted(image, image)
    cx, cy, w, h = (targets[:, 2:] * side).unbind(1)
    grid = torch.arange(side, dtype=torch.float32)
    inside_x = (grid >= (cx - w / 2)[:, None]) & (grid < (cx + w / 2)[:, None])  # (n, side)
    inside_y = (grid >= (cy - h / 2)[:, None]) & (grid < (cy + h / 2)[:, None])
    values = (inside_y[:, :, None] & inside_x[:, None, :]) * (slot + 1).view(-1, 1, 1)
    return torch.zeros(batch, side, side).index_reduce_(0, image, values.float(), "amax")


def ultralytics_seg_loss(nc: int):
    """v8SegmentationLoss of an Ultralytics yolov9c-seg model with its default hyperparameters (overlap masks)."""
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import SegmentationModel
    from ultralytics.utils.loss import v8SegmentationLoss

    model = SegmentationModel("yolov9c-seg.yaml", nc=nc, verbose=False)
    model.args = get_cfg()
    return v8SegmentationLoss(model)


def ultralytics_loss_step(criterion, outputs: tuple, targets: torch.Tensor, masks: torch.Tensor) -> None:
    maps, coefficients, prototypes = outputs
    flat = torch.cat([m.flatten(2) for m in maps], -1)
    boxes, scores = flat.split((REG_CHANNELS, flat.shape[1] - REG_CHANNELS), 1)
    preds = {"boxes": boxes, "scores": scores, "feats": maps, "mask_coefficient": coefficients, "proto": prototypes}
    batch = {"batch_idx": targets[:, 0], "cls": targets[:, 1:2], "bboxes": targets[:, 2:], "masks": masks}
    loss, _ = criterion(preds, batch)
    loss.sum().backward()


def loss_benchmark(args: argparse.Namespace) -> dict:
    from yolov9 import build_model
    from yolov9.loss import SegmentationLoss

    generator = torch.Generator().manual_seed(args.seed)
    targets = random_targets(args.loss_batch, args.boxes, args.nc, generator)
    masks = overlap_masks(targets, args.loss_batch, args.loss_imgsz // MASK_RATIO)
    outputs = head_outputs(args.loss_batch, args.nc, args.loss_imgsz, generator)
    ours = SegmentationLoss(build_model("gelan-c-seg", nc=args.nc), overlap=True)
    peer = ultralytics_seg_loss(args.nc)

    def ours_step() -> None:
        ours([outputs], targets, masks)[0].backward()

    def peer_step() -> None:
        ultralytics_loss_step(peer, outputs, targets, masks)

    ours_step(), peer_step()  # warm-up (anchor grids, allocator)
    samples: dict = {"ours": [], "Ultralytics": []}
    for _ in range(args.rounds):
        samples["ours"].append(timed(ours_step))
        samples["Ultralytics"].append(timed(peer_step))
    medians = {name: statistics.median(t[0] for t in s) for name, s in samples.items()}
    text = f"{summary('ours', samples['ours'])}, {summary('Ultralytics', samples['Ultralytics'])}"
    return {"ours_ms": medians["ours"], "ultralytics_ms": medians["Ultralytics"],
            "ratio": medians["ours"] / medians["Ultralytics"], "text": text}


# (b, c) training -----------------------------------------------------------------------------------------------
class EpochClock:
    """Wall time of every training epoch, from either trainer's epoch start / end callbacks."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._started = 0.0

    def start(self, trainer) -> None:
        self._started = time.perf_counter()

    def end(self, trainer) -> None:
        self.durations.append(time.perf_counter() - self._started)

    def images_per_s(self, images: int) -> float:
        measured = self.durations[1:] or self.durations  # the first epoch warms up
        return images * len(measured) / sum(measured)


def close_mosaic(args: argparse.Namespace) -> int | None:
    """Mosaic off for the last tenth of an epoch-bound run; in a time-bound run each trainer's own default (ours
    re-plans it with the fitted epochs)."""
    return None if args.minutes else max(1, args.epochs // 10)


def train_ours(config: str, data: Path, args: argparse.Namespace, out: Path, clock: EpochClock) -> dict:
    from yolov9 import build_model
    from yolov9.callbacks import Callbacks
    from yolov9.cfg import HYP_DIR
    from yolov9.engine.trainer import train

    callbacks = Callbacks({"on_train_epoch_start": [clock.start], "on_train_epoch_end": [clock.end]})
    model = build_model(config, seed=args.seed)
    result = train(model, data=str(data), callbacks=callbacks, epochs=args.epochs, time=args.minutes,
                   imgsz=args.imgsz, batch=args.batch, workers=2, device="cpu", seed=args.seed,
                   hyp=str(HYP_DIR / "demo-cpu.yaml"), nbs=args.batch, project=str(out), name=config, plots=False,
                   verbose=False, close_mosaic=close_mosaic(args))
    parameters = sum(p.numel() for p in result["model"].parameters())
    return {"weights": str(result["save_dir"] / "weights" / "best.pt"), "parameters": parameters}


def train_ultralytics(data: Path, args: argparse.Namespace, out: Path, clock: EpochClock) -> dict:
    from ultralytics import YOLO

    options = dict(optimizer="SGD", lr0=0.01, nbs=args.batch) if args.same_optimizer else {}
    if args.minutes:
        options["time"] = args.minutes / 60  # hours; Ultralytics then ignores `epochs`
    else:
        options["close_mosaic"] = close_mosaic(args)
    model = YOLO("yolov9c-seg.yaml", task="segment")
    model.add_callback("on_train_epoch_start", clock.start)
    model.add_callback("on_train_epoch_end", clock.end)
    model.train(data=str(data), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, workers=2, device="cpu",
                seed=args.seed, plots=False, amp=False, project=str(out), name="ultralytics", verbose=False,
                **options)
    best = YOLO(str(out / "ultralytics" / "weights" / "best.pt"))
    own = best.val(data=str(data), imgsz=args.imgsz, batch=args.batch, device="cpu", plots=False, verbose=False)
    with contextlib.redirect_stdout(io.StringIO()):
        onnx_file = best.export(format="onnx", imgsz=args.imgsz, dynamic=True, simplify=True)
    parameters = sum(p.numel() for p in best.model.parameters())
    return {"weights": str(onnx_file), "parameters": parameters, "own mask mAP50-95": float(own.seg.map)}


def evaluate(weights: str, data: Path, args: argparse.Namespace) -> dict:
    """Every contender's best weights through one evaluator: ours (boxes, and masks at the original resolution)."""
    from yolov9.engine.validator import validate

    metrics = validate(weights, data, imgsz=args.imgsz, batch=2 * args.batch, plots=False, verbose=False)
    keys = ("mAP50", "mAP50-95", "mask/mAP50", "mask/mAP50-95")
    missing = [k for k in keys if k not in metrics]
    if missing:
        raise SystemExit(f"{weights}: the evaluator gave no {missing} (not a segmentation model?)")
    return {key: float(metrics[key]) for key in keys}


TRAINING_SETTINGS = ("epochs", "minutes", "imgsz", "batch", "seed", "same_optimizer", "train_images")


def child(which: str, data: Path, args: argparse.Namespace) -> dict:
    """Train, time and score one contender (in its own process)."""
    clock = EpochClock()
    with tempfile.TemporaryDirectory() as tmp:
        data = absolute_data_yaml(data, Path(tmp))
        started = time.time()
        trained = (train_ultralytics(data, args, Path(tmp), clock) if which == PEER
                   else train_ours(which, data, args, Path(tmp), clock))
        minutes = (time.time() - started) / 60
        scores = evaluate(trained.pop("weights"), data, args)
    return {**trained, **scores, "minutes": minutes, "epochs": len(clock.durations),
            "images_per_s": clock.images_per_s(args.train_images)}


def in_subprocess(which: str, data: Path, args: argparse.Namespace) -> dict:
    """`child` in a fresh Python process (its own threads, allocator and imports); its result comes back as a file."""
    settings = {key: getattr(args, key) for key in TRAINING_SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        done = subprocess.run([sys.executable, __file__, "--child", which, "--data", str(data), "--settings",
                               json.dumps(settings), "--result", str(result)], capture_output=True, text=True,
                              env=dict(os.environ, YOLO_OFFLINE="1"))
        if done.returncode or not result.is_file():
            raise SystemExit(f"{which} failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return json.loads(result.read_text())


def median_of(runs: list[dict]) -> dict:
    """Per key the median over the repeats (numbers), or the first value."""
    return {k: statistics.median(r[k] for r in runs) if isinstance(runs[0][k], (int, float)) else runs[0][k]
            for k in runs[0]}


def table(loss: dict, results: dict, args: argparse.Namespace) -> str:
    peer_speed = results[PEER]["images_per_s"] if PEER in results else float("nan")
    budget = f"{args.minutes:g} minutes of training each" if args.minutes else f"{args.epochs} epochs"
    lines = [f"Command: `YOLO_OFFLINE=1 .venv-bench/bin/python benchmarks/seg_evidence.py {' '.join(sys.argv[1:])}`"
             f" (torch {torch.__version__}, {torch.get_num_threads()} threads, CPU)",
             "",
             f"(a) Loss forward + backward, batch {args.loss_batch}, {args.loss_imgsz} px, nc {args.nc}, "
             f"{args.boxes} objects per image, {args.rounds} interleaved rounds (wall median / min ms, CPU ms): "
             f"{loss['text']} -> **{loss['ratio']:.2f}x** (ours / Ultralytics)",
             "",
             f"(b, c) Trained from scratch on digits-on-photos with masks ({args.train_images} train / "
             f"{args.val_images} val images, seed 0): imgsz {args.imgsz}, batch {args.batch}, {budget}, "
             f"seed {args.seed}, {args.repeats} interleaved repeat(s) (medians); ours with cfg/hyp/demo-cpu.yaml, "
             f"Ultralytics with {'SGD lr0 0.01, nbs = batch' if args.same_optimizer else 'its own defaults'}. "
             "mAP: every contender's best weights scored by one evaluator, ours (Ultralytics through its ONNX "
             "export); the last column is Ultralytics' own validator.",
             "",
             "| model | params | train images/s | speed vs Ultralytics | epochs | box mAP50-95 | mask mAP50 "
             "| mask mAP50-95 | minutes | own validator mask mAP50-95 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for which, r in results.items():
        own = f"{r['own mask mAP50-95']:.3f}" if "own mask mAP50-95" in r else "same"
        lines.append(f"| {which} | {r['parameters'] / 1e6:.2f}M | {r['images_per_s']:.2f} | "
                     f"{r['images_per_s'] / peer_speed:.2f}x | {r['epochs']} | {r['mAP50-95']:.3f} | "
                     f"{r['mask/mAP50']:.3f} | {r['mask/mAP50-95']:.3f} | {r['minutes']:.1f} | {own} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny set, 2 epochs, small loss batch")
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--epochs", type=int, default=None,
                        help="default 15 (quick: 2); with --minutes an upper bound of ours (default 200)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="an equal wall-clock training budget per contender instead of equal epochs")
    parser.add_argument("--imgsz", type=int, default=None, help="default 320 (quick: 160)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1, help="training runs per contender, interleaved")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--same-optimizer", action="store_true")
    parser.add_argument("--rounds", type=int, default=None, help="loss rounds (default 10, quick 2)")
    parser.add_argument("--loss-batch", type=int, default=None, help="loss batch (default 8, quick 2)")
    parser.add_argument("--loss-imgsz", type=int, default=640)
    parser.add_argument("--nc", type=int, default=80, help="classes of the loss benchmark")
    parser.add_argument("--boxes", type=int, default=10, help="objects per image of the loss benchmark")
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--settings", type=json.loads, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        vars(args).update(args.settings)
        args.result.write_text(json.dumps(child(args.child, args.data, args)))
        return
    quick = args.quick
    args.epochs = args.epochs or (2 if quick else 200 if args.minutes else 15)
    args.imgsz = args.imgsz or (160 if quick else 320)
    args.rounds = args.rounds or (2 if quick else 10)
    args.loss_batch = args.loss_batch or (2 if quick else 8)
    args.train_images, args.val_images = (16, 8) if quick else (120, 40)
    loss = loss_benchmark(args)
    print(f"(a) seg loss: {loss['text']} -> ratio {loss['ratio']:.2f}x", flush=True)
    from yolov9.datasets import generate_digits

    runs: dict = {which: [] for which in args.contenders}
    with tempfile.TemporaryDirectory() as tmp:
        generate_digits(Path(tmp) / "digits", n_train=args.train_images, n_val=args.val_images, seed=0,
                        imgsz=args.imgsz, masks=True)
        data = Path(tmp) / "digits" / "data.yaml"
        for _ in range(args.repeats):
            for which in args.contenders:
                runs[which].append(in_subprocess(which, data, args))
                r = runs[which][-1]
                print(f"{which:24s} {r['images_per_s']:.2f} img/s  mask mAP50-95 {r['mask/mAP50-95']:.3f}  "
                      f"box mAP50-95 {r['mAP50-95']:.3f}  {r['minutes']:.1f} min", flush=True)
    text = table(loss, {which: median_of(r) for which, r in runs.items()}, args)
    print(text)
    if not quick:
        tag = f"_seed{args.seed}" if args.seed else ""
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"seg_evidence{tag}.md").write_text(text + "\n")
        (RESULTS / f"seg_evidence{tag}.json").write_text(json.dumps({"loss": loss, "training": runs}, indent=1))


if __name__ == "__main__":
    main()
