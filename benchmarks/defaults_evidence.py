"""Short-run defaults, the evidence: `yolov9 train` with the old defaults (official recipe: SGD, scratch-high,
nominal batch 64, close-mosaic 15), with the new `auto` defaults (engine/recipe.py), and Ultralytics yolov9t with
its own defaults (optimizer=auto, close_mosaic 10), at several epoch counts and seeds, same data, image size and
batch, from scratch, each run in a fresh subprocess, contenders interleaved within every (dataset, epochs, seed).

Only the options a user would type are given: data, epochs, imgsz, batch, seed (and device / workers); every
contender's best weights are scored by one evaluator, ours (Ultralytics through its dynamic ONNX export).
Prints the table of mAP50-95 per contender (median and every seed), and writes
benchmarks/results/defaults_evidence.md / .json; a sweep adds to what earlier sweeps saved there (a run of the same
dataset, epochs, seed and contender replaces the saved one), so the table grows one partial sweep at a time.

    YOLO_OFFLINE=1 .venv-bench/bin/python benchmarks/defaults_evidence.py [--epochs 15 25 50] [--seeds 0 1 2]
        [--datasets trees digits] [--quick]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pgi_evidence import absolute_data_yaml, digits_dataset, evaluate, run_child  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CONTENDERS = ("old defaults", "new defaults", "ultralytics defaults")
OLD_DEFAULTS = dict(optimizer="SGD", hyp="scratch-high", close_mosaic=15)  # what train() did before `auto`


def train_contender(which: str, data: Path, args: argparse.Namespace, out: Path) -> dict:
    """Train one contender from scratch; {"weights": best weights to score}."""
    if which == "ultralytics defaults":
        from ultralytics import YOLO

        YOLO("yolov9t.yaml").train(data=str(data), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch,
                                   workers=2, device="cpu", seed=args.seed, plots=False, project=str(out),
                                   name="ultralytics", verbose=False)
        best = YOLO(str(out / "ultralytics" / "weights" / "best.pt"))
        return {"weights": str(best.export(format="onnx", imgsz=args.imgsz, dynamic=True, simplify=True))}
    from yolov9 import build_model
    from yolov9.engine.trainer import train

    options = OLD_DEFAULTS if which == "old defaults" else {}
    result = train(build_model("yolov9-t", seed=args.seed), data=str(data), epochs=args.epochs, imgsz=args.imgsz,
                   batch=args.batch, workers=2, device="cpu", seed=args.seed, project=str(out), name="ours",
                   plots=False, verbose=False, **options)
    return {"weights": str(result["save_dir"] / "weights" / "best.pt")}


def child(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = absolute_data_yaml(Path(args.data), Path(tmp))
        started = time.time()
        result = train_contender(args.child, data, args, Path(tmp))
        result["minutes"] = (time.time() - started) / 60
        result.update(evaluate(result.pop("weights"), data, args))
    print("RESULT " + json.dumps(result))


def table(results: list[dict], args: argparse.Namespace) -> str:
    seeds = sorted({r["seed"] for r in results})
    lines = [f"Trained from scratch on this CPU: yolov9-t (ours) / yolov9t (Ultralytics), imgsz {args.imgsz}, "
             f"batch {args.batch}, seeds {' '.join(map(str, seeds))}; mAP50-95 on the val split by one "
             "evaluator (ours), median over seeds (every seed in brackets, in seed order).",
             "Commands: " + ", ".join(f"`{c}`" for c in dict.fromkeys(r["command"] for r in results)), "",
             "| dataset | epochs | " + " | ".join(CONTENDERS) + " |", "|---|---|" + "---|" * len(CONTENDERS)]
    for dataset in dict.fromkeys(r["dataset"] for r in results):
        for epochs in sorted({r["epochs"] for r in results if r["dataset"] == dataset}):
            cells = []
            for which in CONTENDERS:
                scores = [r["mAP50-95"] for r in sorted(results, key=lambda r: r["seed"])
                          if (r["dataset"], r["epochs"], r["contender"]) == (dataset, epochs, which)]
                cells.append(f"{statistics.median(scores):.3f} ({' '.join(f'{s:.3f}' for s in scores)})"
                             if scores else "")
            lines.append(f"| {dataset} | {epochs} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", dest="epochs_list", type=int, nargs="+", default=[15, 25, 50])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=["trees", "digits"], choices=("trees", "digits"))
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=16, help="default 16, the CLI's default")
    parser.add_argument("--quick", action="store_true", help="2 epochs, one seed, small digits set")
    parser.add_argument("--child", choices=CONTENDERS)
    parser.add_argument("--data")
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)  # the child's seed
    parser.add_argument("--same-optimizer", action="store_true", help=argparse.SUPPRESS)  # run_child's protocol
    args = parser.parse_args()
    if args.child:  # run_child passes one --epochs value
        args.epochs = args.epochs_list[0]
        child(args)
        return
    if args.quick:
        args.epochs_list, args.seeds = [2], [0]
    command = "YOLO_OFFLINE=1 .venv-bench/bin/python benchmarks/defaults_evidence.py " + " ".join(sys.argv[1:])
    results = [] if args.quick else saved_results()
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in args.datasets:
            data = ROOT / "datasets" / "trees" / "trees.yaml" if dataset == "trees" else digits_dataset(Path(tmp),
                                                                                                          args.quick)
            for epochs in args.epochs_list:
                for seed in args.seeds:
                    args.epochs, args.seed = epochs, seed
                    for which in CONTENDERS:
                        result = run_child(which, data, args, script=__file__)
                        key = {"dataset": dataset, "epochs": epochs, "seed": seed, "contender": which}
                        results = [r for r in results if {k: r[k] for k in key} != key]
                        results.append({**key, **result, "command": command.strip()})
                        print(f"{dataset:7s} {epochs:3d} ep seed {seed} {which:22s} mAP50-95 "
                              f"{result['mAP50-95']:.3f} ({result['minutes']:.1f} min)", flush=True)
                        if not args.quick:  # after every run: an interrupted sweep keeps what it measured
                            save(results, args)
    print(table(results, args))


def saved_results() -> list[dict]:
    """The runs earlier sweeps saved (none when there is no saved file)."""
    path = RESULTS / "defaults_evidence.json"
    return json.loads(path.read_text()) if path.exists() else []


def save(results: list[dict], args: argparse.Namespace) -> None:
    from yolov9.io.atomic import atomic_write_bytes

    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(RESULTS / "defaults_evidence.md", (table(results, args) + "\n").encode())
    atomic_write_bytes(RESULTS / "defaults_evidence.json", json.dumps(results, indent=1).encode())


if __name__ == "__main__":
    main()
