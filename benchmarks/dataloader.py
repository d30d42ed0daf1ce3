"""Training-loader throughput and memory: ours vs Ultralytics' on the same generated dataset.

Mosaic + mixup on (the official hyp.scratch-high values for both), imgsz 640, batch 16, 2 workers, 3 epochs.
Each run is a fresh subprocess (so RSS is not shared between them); runs are interleaved ours / theirs.
Prints images/s, peak RSS of the loader process plus its workers (sum of RSS), and the ratios.

Run with the benchmark venv (it has both packages): `.venv-bench/bin/python benchmarks/dataloader.py [--quick]`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

HYP = dict(hsv_h=0.015, hsv_s=0.7, hsv_v=0.4, degrees=0.0, translate=0.1, scale=0.9, shear=0.0, perspective=0.0,
           flipud=0.0, fliplr=0.5, mosaic=1.0, mixup=0.15, copy_paste=0.3)


def make_dataset(root: Path, n: int, seed: int = 0) -> Path:
    """JPEGs of mixed sizes (like COCO / phone photos) with 2-8 filled rectangles each and their YOLO labels."""
    rng = np.random.default_rng(seed)
    sizes = [(480, 640), (640, 480), (427, 640), (720, 1280), (768, 1024), (1080, 1920)]
    (root / "images" / "train").mkdir(parents=True, exist_ok=True)
    (root / "labels" / "train").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        h, w = sizes[i % len(sizes)]
        image = rng.integers(0, 60, (h // 8, w // 8, 3), dtype=np.uint8)
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_CUBIC)
        lines = []
        for _ in range(rng.integers(2, 9)):
            bw, bh = rng.integers(w // 16, w // 3), rng.integers(h // 16, h // 3)
            x1, y1 = rng.integers(0, w - bw), rng.integers(0, h - bh)
            image[y1:y1 + bh, x1:x1 + bw] = rng.integers(80, 255, 3)
            lines.append(f"{rng.integers(0, 3)} {(x1 + bw / 2) / w:.6f} {(y1 + bh / 2) / h:.6f} {bw / w:.6f} {bh / h:.6f}")
        cv2.imwrite(str(root / "images" / "train" / f"{i:05d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        (root / "labels" / "train" / f"{i:05d}.txt").write_text("\n".join(lines) + "\n")
    yaml = root / "data.yaml"
    yaml.write_text(f"path: {root}\ntrain: images/train\nval: images/train\nnames: [a, b, c]\n")
    return yaml


def tree_rss(pid: int) -> int:
    """Sum of VmRSS (bytes) of a process and all its descendants."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            for task in Path(f"/proc/{p}").joinpath("task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


class PeakRSS:
    """Samples tree_rss of this process every 50 ms; `take()` returns the peak since the last call."""

    def __init__(self) -> None:
        self.peak, self.running = 0, True
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while self.running:
            self.peak = max(self.peak, tree_rss(os.getpid()))
            time.sleep(0.05)

    def take(self) -> int:
        peak, self.peak = max(self.peak, tree_rss(os.getpid())), 0
        return peak


def ours(yaml: Path, imgsz: int, batch: int, workers: int):
    from yolov9.data import build_train_loader

    loader = build_train_loader(yaml, imgsz, batch, hyp=HYP, workers=workers, seed=0)
    return loader, loader.dataset.set_epoch


def ultralytics(yaml: Path, imgsz: int, batch: int, workers: int):
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics.cfg import get_cfg
    from ultralytics.data.build import build_dataloader, build_yolo_dataset

    cfg = get_cfg(overrides=dict(HYP, imgsz=imgsz, task="detect", cache=False, plots=False))
    data = {"path": str(yaml.parent), "names": {0: "a", 1: "b", 2: "c"}, "nc": 3, "channels": 3}
    train = yaml.read_text().split("train: ")[1].splitlines()[0]  # same split as ours: a folder or a .txt list
    dataset = build_yolo_dataset(cfg, str(yaml.parent / train), batch, data, mode="train")
    return build_dataloader(dataset, batch, workers, shuffle=True, rank=-1), lambda epoch: None


def child(which: str, yaml: Path, imgsz: int, batch: int, workers: int, epochs: int) -> None:
    loader, set_epoch = (ours if which == "ours" else ultralytics)(yaml, imgsz, batch, workers)
    monitor = PeakRSS()
    result = {"images_per_s": [], "peak_rss": []}
    for epoch in range(epochs):
        set_epoch(epoch)
        start, count = time.perf_counter(), 0
        for batch_data in loader:
            images = batch_data["images"] if isinstance(batch_data, dict) and "images" in batch_data else batch_data["img"]
            count += len(images)
        result["images_per_s"].append(count / (time.perf_counter() - start))
        result["peak_rss"].append(monitor.take())
    print("RESULT " + json.dumps(result), flush=True)
    os._exit(0)


def per_sample_ms(yaml: Path, imgsz: int, batch: int, rounds: int) -> dict:
    """Single-process cost of one training sample (ms), decoded images already buffered: the augmentation
    pipeline itself, without worker start-up or decoding. Interleaved ours / theirs."""
    import cv2

    cv2.setNumThreads(0)
    subset = yaml.parent / "first64.txt"  # fits both loaders' buffers of decoded images
    subset.write_text("\n".join(sorted(str(p) for p in (yaml.parent / "images" / "train").glob("*.jpg"))[:64]))
    yaml = yaml.parent / "first64.yaml"
    yaml.write_text(f"path: {yaml.parent}\ntrain: first64.txt\nnames: [a, b, c]\n")
    datasets = {"ours": ours(yaml, imgsz, batch, 0)[0].dataset,
                "ultralytics": ultralytics(yaml, imgsz, batch, 0)[0].dataset}
    n = len(datasets["ours"])
    for dataset in datasets.values():
        for _ in range(2):  # fill the decoded-image buffers
            [dataset[i] for i in range(n)]
    times = {which: [] for which in datasets}
    for r in range(rounds):
        datasets["ours"].set_epoch(r + 2)
        for which, dataset in datasets.items():
            start = time.perf_counter()
            [dataset[i] for i in range(n)]
            times[which].append((time.perf_counter() - start) / n * 1000)
    return {which: float(np.median(t)) for which, t in times.items()}


def run_child(which: str, args, yaml: Path) -> dict:
    command = [sys.executable, __file__, "--child", which, "--data", str(yaml), "--imgsz", str(args.imgsz),
               "--batch", str(args.batch), "--workers", str(args.workers), "--epochs", str(args.epochs)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(next(ln for ln in output.splitlines() if ln.startswith("RESULT "))[7:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="48 images, 1 round (proves it runs)")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--child", choices=["ours", "ultralytics"])
    parser.add_argument("--data", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.imgsz, args.batch, args.workers, args.epochs)
        return
    if args.quick:
        args.images, args.rounds = 48, 1
    with tempfile.TemporaryDirectory() as tmp:
        yaml = make_dataset(Path(tmp), args.images)
        for which in ("ours", "ultralytics"):  # build both label caches before timing
            run_child(which, argparse.Namespace(**{**vars(args), "epochs": 0}), yaml)
        results = {"ours": [], "ultralytics": []}
        for _ in range(args.rounds):
            for which in ("ours", "ultralytics"):
                results[which].append(run_child(which, args, yaml))
        ms = per_sample_ms(yaml, args.imgsz, args.batch, rounds=3 if args.quick else 5)
    summary = {}
    for which, runs in results.items():
        speed = float(np.median([np.mean(r["images_per_s"]) for r in runs]))
        peak = max(max(r["peak_rss"]) for r in runs) / 2 ** 20
        growth = float(np.median([r["peak_rss"][-1] / r["peak_rss"][0] - 1 for r in runs])) * 100
        summary[which] = (speed, peak, growth)
        print(f"{which:<12} {speed:7.1f} images/s   peak RSS {peak:7.0f} MiB   RSS growth epoch 1->{args.epochs}: "
              f"{growth:+.1f}%   (per-epoch images/s of run 1: {[round(v, 1) for v in runs[0]['images_per_s']]})")
    print(f"per sample (1 process, warm buffers): ours {ms['ours']:.1f} ms, ultralytics {ms['ultralytics']:.1f} ms, "
          f"ratio {ms['ultralytics'] / ms['ours']:.2f}x")
    print(f"throughput ratio ours/ultralytics: {summary['ours'][0] / summary['ultralytics'][0]:.2f}x   "
          f"peak RSS ratio: {summary['ours'][1] / summary['ultralytics'][1]:.2f}x   "
          f"({args.images} images, imgsz {args.imgsz}, batch {args.batch}, {args.workers} workers, "
          f"{args.epochs} epochs, {args.rounds} round(s))")


if __name__ == "__main__":
    main()
