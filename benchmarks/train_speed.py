"""Training throughput: our gelan-s and yolov9-s vs Ultralytics yolov9s (GELAN-only), same data, same run.

imgsz 320, batch 8, 2 workers, CPU, SGD, official augmentation values for both (mosaic, mixup 0.15,
copy-paste 0.3, scale 0.9), no validation, no plots. Each measurement is a fresh subprocess; runs are
interleaved. The first epoch warms up; the images/s of the following epochs are reported, with peak RSS
(the training process plus its loader workers). Goals: gelan-s >= 1.25x Ultralytics, yolov9-s >= 1.0x.

Usage: YOLO_OFFLINE=1 .venv-bench/bin/python benchmarks/train_speed.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dataloader import make_dataset  # noqa: E402  (same generated dataset as the loader benchmark)

IMGSZ, BATCH, WORKERS = 320, 8, 2
CONTENDERS = ("gelan-s", "yolov9-s", "ultralytics-yolov9s")


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + workers) / 1024


def ours(config: str, data: Path, epochs: int, out: Path) -> list[float]:
    from yolov9 import build_model
    from yolov9.engine.trainer import Trainer, train

    durations: list[float] = []
    original = Trainer.train_epoch

    def timed(self, epoch):
        started = time.perf_counter()
        items = original(self, epoch)
        durations.append(time.perf_counter() - started)
        return items

    Trainer.train_epoch = timed
    train(build_model(config, nc=3), data=str(data), epochs=epochs, imgsz=IMGSZ, batch=BATCH, workers=WORKERS,
          device="cpu", val=False, plots=False, verbose=False, close_mosaic=0, project=str(out), name=config)
    return durations


def ultralytics(data: Path, epochs: int, out: Path) -> list[float]:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    durations: list[float] = []
    model = YOLO("yolov9s.yaml")
    model.add_callback("on_train_epoch_start", lambda t: durations.append(-time.perf_counter()))
    model.add_callback("on_train_epoch_end", lambda t: durations.__setitem__(-1, durations[-1] + time.perf_counter()))
    model.train(data=str(data), epochs=epochs, imgsz=IMGSZ, batch=BATCH, workers=WORKERS, device="cpu", val=False,
                plots=False, optimizer="SGD", lr0=0.01, amp=False, close_mosaic=0, mixup=0.15, copy_paste=0.3,
                scale=0.9, project=str(out), name="ultralytics", verbose=False)
    return durations


def child(which: str, data: Path, epochs: int, images: int) -> None:
    with tempfile.TemporaryDirectory() as out:
        durations = (ultralytics(data, epochs, Path(out)) if which.startswith("ultralytics")
                     else ours(which, data, epochs, Path(out)))
    measured = durations[1:] or durations
    print(json.dumps({"images_per_s": images * len(measured) / sum(measured), "peak_rss_mb": peak_rss_mb()}))


def run_child(which: str, data: Path, epochs: int, images: int) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", which, "--data", str(data), "--epochs", str(epochs),
                           "--images", str(images)], capture_output=True, text=True,
                          env=dict(os.environ, YOLO_OFFLINE="1"))
    if done.returncode:
        raise SystemExit(f"{which} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 images, 2 epochs, 1 repeat")
    parser.add_argument("--child", choices=CONTENDERS)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--images", type=int)
    parser.add_argument("--repeats", type=int, default=None, help="runs per contender (default 3, quick 1)")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.epochs, args.images)
        return
    images, epochs, repeats = (8, 2, 1) if args.quick else (64, 3, 3)
    repeats = args.repeats or repeats
    with tempfile.TemporaryDirectory() as root:
        data = make_dataset(Path(root), images)
        results: dict[str, list[dict]] = {c: [] for c in CONTENDERS}
        for _ in range(repeats):
            for which in CONTENDERS:
                results[which].append(run_child(which, data, epochs, images))
                print(f"  {which}: {results[which][-1]}", flush=True)
    print(f"training, imgsz {IMGSZ}, batch {BATCH}, {WORKERS} workers, {images} images, CPU "
          f"({epochs - 1} measured epoch(s) x {repeats} run(s), median)")
    median = {c: (statistics.median(r["images_per_s"] for r in runs), max(r["peak_rss_mb"] for r in runs))
              for c, runs in results.items()}
    peer = median["ultralytics-yolov9s"][0]
    for which, (speed, rss) in median.items():
        print(f"  {which:<20} {speed:6.2f} images/s  peak RSS {rss:7.0f} MB  ratio vs Ultralytics {speed / peer:.2f}x")
    print(f"goals: gelan-s >= 1.25x ({median['gelan-s'][0] / peer:.2f}x), "
          f"yolov9-s >= 1.0x ({median['yolov9-s'][0] / peer:.2f}x)")


if __name__ == "__main__":
    main()
