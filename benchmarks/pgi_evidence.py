"""The proof, at equal budget: PGI (yolov9-t) vs GELAN (gelan-t) with our trainer, and both vs Ultralytics yolov9t.

Every contender trains from scratch on the same data, image size, epochs, batch and seed, on this CPU, in the
same run (one after another, each in a fresh subprocess); then the best weights of every contender are scored by
one evaluator, ours (Ultralytics' through its own dynamic ONNX export), and Ultralytics' own validator is reported
beside it. Datasets: the bundled real "trees" photos and the generated multi-class "digits-on-photos".
Prints (and writes to benchmarks/results/pgi_evidence[_seedS].md/.json) the table of mAP50, mAP50-95 and wall
time, and a learning-curve PNG per dataset; with --readme, replaces the table between the EVIDENCE markers in
README.md.

Ours uses the official recipe with a small model's augmentation and an optimizer step per batch
(cfg/hyp/demo-cpu.yaml, nbs = batch); Ultralytics runs with its own defaults (optimizer=auto, nbs 64) or, with
--same-optimizer, with SGD lr0 0.01 and nbs = batch.

    YOLO_OFFLINE=1 .venv-bench/bin/python benchmarks/pgi_evidence.py [--quick] [--seed S] [--readme]
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CONTENDERS = ("yolov9-t", "gelan-t", "ultralytics-yolov9t")
MARKERS = ("<!-- EVIDENCE:START -->", "<!-- EVIDENCE:END -->")


def absolute_data_yaml(data: Path, folder: Path) -> Path:
    """A copy of a dataset YAML with an absolute `path` (Ultralytics resolves relative ones elsewhere)."""
    import yaml

    config = yaml.safe_load(data.read_text())
    config["path"] = str((data.parent / config.get("path", ".")).resolve())
    out = folder / data.name
    out.write_text(yaml.safe_dump(config))
    return out


def train_ours(config: str, data: Path, args: argparse.Namespace, out: Path) -> dict:
    from yolov9 import build_model
    from yolov9.cfg import HYP_DIR
    from yolov9.engine.trainer import train

    result = train(build_model(config, seed=args.seed), data=str(data), epochs=args.epochs, imgsz=args.imgsz,
                   batch=args.batch, workers=2, device="cpu", seed=args.seed, hyp=str(HYP_DIR / "demo-cpu.yaml"),
                   nbs=args.batch, project=str(out), name=config, plots=False, verbose=False,
                   close_mosaic=max(1, args.epochs // 10))
    curve = [row["metrics/mAP50-95"] for row in result["results"]]
    return {"weights": str(result["save_dir"] / "weights" / "best.pt"), "curve": curve}


def train_ultralytics(data: Path, args: argparse.Namespace, out: Path) -> dict:
    from ultralytics import YOLO

    options = dict(optimizer="SGD", lr0=0.01, nbs=args.batch) if args.same_optimizer else {}
    model = YOLO("yolov9t.yaml")
    model.train(data=str(data), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, workers=2, device="cpu",
                seed=args.seed, plots=False, amp=False, project=str(out), name="ultralytics", verbose=False,
                close_mosaic=max(1, args.epochs // 10), **options)
    with open(out / "ultralytics" / "results.csv") as f:
        rows = [{k.strip(): v for k, v in row.items()} for row in csv.DictReader(f)]
    best = YOLO(str(out / "ultralytics" / "weights" / "best.pt"))
    own = best.val(data=str(data), imgsz=args.imgsz, batch=args.batch, device="cpu", plots=False, verbose=False)
    with contextlib.redirect_stdout(io.StringIO()):
        onnx_file = best.export(format="onnx", imgsz=args.imgsz, dynamic=True, simplify=True)
    return {"weights": str(onnx_file), "own mAP50-95": float(own.box.map),
            "curve": [float(r["metrics/mAP50-95(B)"]) for r in rows]}


def evaluate(weights: str, data: Path, args: argparse.Namespace) -> dict:
    """Every contender's best weights through one evaluator: ours (rect letterbox, NMS, COCO-style AP)."""
    from yolov9.engine.validator import validate

    metrics = validate(weights, data, imgsz=args.imgsz, batch=2 * args.batch, plots=False, verbose=False)
    return {"mAP50": metrics["mAP50"], "mAP50-95": metrics["mAP50-95"]}


def child(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = absolute_data_yaml(Path(args.data), Path(tmp))
        started = time.time()
        if args.child.startswith("ultralytics"):
            result = train_ultralytics(data, args, Path(tmp))
        else:
            result = train_ours(args.child, data, args, Path(tmp))
        result["minutes"] = (time.time() - started) / 60
        result.update(evaluate(result.pop("weights"), data, args))
    print("RESULT " + json.dumps(result))


def run_child(which: str, data: Path, args: argparse.Namespace, script: str = __file__) -> dict:
    """`script --child which` in a fresh process (its own threads, allocator and imports): its RESULT line."""
    command = [sys.executable, script, "--child", which, "--data", str(data), "--epochs", str(args.epochs),
               "--imgsz", str(args.imgsz), "--batch", str(args.batch), "--seed", str(args.seed)]
    if args.same_optimizer:
        command.append("--same-optimizer")
    done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, YOLO_OFFLINE="1"))
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"{which} on {data} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def digits_dataset(folder: Path, quick: bool) -> Path:
    from yolov9.datasets import generate_digits

    out = folder / "digits"
    generate_digits(out, n_train=40 if quick else 120, n_val=16 if quick else 40, seed=0, imgsz=320)
    return next(out.glob("*.yaml"))


def plot_curves(name: str, results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for contender, result in results.items():
        ax.plot(range(1, len(result["curve"]) + 1), result["curve"], label=contender)
    ax.set(xlabel="epoch", ylabel="val mAP50-95", title=f"{name}: learning curves")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def table(all_results: dict, args: argparse.Namespace) -> str:
    lines = [f"Trained from scratch on this CPU (2 cores): imgsz {args.imgsz}, batch {args.batch}, "
             f"{args.epochs} epochs, seed {args.seed}; ours with cfg/hyp/demo-cpu.yaml, Ultralytics with "
             f"{'SGD lr0 0.01, nbs = batch' if args.same_optimizer else 'its own defaults (optimizer=auto)'}.",
             "Every contender's best weights are scored by one evaluator, ours (`yolov9 val`; Ultralytics through "
             "its own dynamic ONNX export); the last column is Ultralytics' own validator on its best.pt.",
             f"Command: `YOLO_OFFLINE=1 .venv-bench/bin/python benchmarks/pgi_evidence.py {' '.join(sys.argv[1:])}`",
             "",
             "| dataset | model | val mAP50 | val mAP50-95 | wall time (min) | own validator mAP50-95 |",
             "|---|---|---|---|---|---|"]
    for dataset, results in all_results.items():
        for contender, r in results.items():
            own = f"{r['own mAP50-95']:.3f}" if "own mAP50-95" in r else "same"
            lines.append(f"| {dataset} | {contender} | {r['mAP50']:.3f} | {r['mAP50-95']:.3f} | {r['minutes']:.1f} "
                         f"| {own} |")
    return "\n".join(lines)


def update_readme(text: str) -> None:
    readme = ROOT / "README.md"
    content = readme.read_text()
    start, end = (content.index(m) for m in MARKERS)
    readme.write_text(content[:start + len(MARKERS[0])] + "\n" + text + "\n" + content[end:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 epochs, small digits set (proves it runs)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--datasets", nargs="+", default=["trees", "digits"], choices=("trees", "digits"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--same-optimizer", action="store_true")
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    parser.add_argument("--child", choices=CONTENDERS)
    parser.add_argument("--data")
    args = parser.parse_args()
    args.epochs = args.epochs or (3 if args.quick else 15)
    if args.child:
        child(args)
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    all_results: dict = {}
    tag = f"_seed{args.seed}" if args.seed else ""  # results of other seeds do not replace seed 0's
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in args.datasets:
            data = ROOT / "datasets" / "trees" / "trees.yaml" if dataset == "trees" else digits_dataset(Path(tmp),
                                                                                                          args.quick)
            all_results[dataset] = {}
            for contender in CONTENDERS:
                result = run_child(contender, data, args)
                all_results[dataset][contender] = result
                print(f"{dataset:7s} {contender:20s} mAP50 {result['mAP50']:.3f} mAP50-95 {result['mAP50-95']:.3f} "
                      f"{result['minutes']:.1f} min", flush=True)
            plot_curves(dataset, all_results[dataset], RESULTS / f"learning_curves_{dataset}{tag}.png")
    text = table(all_results, args)
    (RESULTS / f"pgi_evidence{tag}.md").write_text(text + "\n")
    (RESULTS / f"pgi_evidence{tag}.json").write_text(json.dumps(all_results, indent=1))
    print(text)
    if args.readme:
        update_readme(text)


if __name__ == "__main__":
    main()
