"""Loss forward + backward time: yolov9 DetectionLoss vs Ultralytics v8DetectionLoss, same maps and targets.

Run in the benchmark venv (our package and Ultralytics on the same torch):
    YOLO_OFFLINE=1 .venv-bench/bin/python benchmarks/loss.py [--quick]
Both losses see the same raw head maps (B, 64 + nc, H, W) for 640x640 inputs and the same targets. A dual-branch
(PGI) step is timed as our one call over two branches vs two Ultralytics calls (one per branch). Timings are
interleaved, round by round; the ratio is ours / Ultralytics (below 1.0 means we are faster).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("YOLO_OFFLINE", "1")

import torch  # noqa: E402

from yolov9 import build_model  # noqa: E402
from yolov9.loss import DetectionLoss  # noqa: E402

STRIDES = (8, 16, 32)


def random_maps(batch: int, nc: int, imgsz: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Raw maps of one branch, as leaves that collect gradients."""
    return [torch.randn(batch, 64 + nc, imgsz // s, imgsz // s, generator=generator).requires_grad_(True)
            for s in STRIDES]


def random_targets(batch: int, per_image: int, nc: int, generator: torch.Generator) -> torch.Tensor:
    """(batch * per_image, 6) rows [image, class, cx, cy, w, h], normalised."""
    n = batch * per_image
    image = torch.arange(batch).repeat_interleave(per_image).float()
    cls = torch.randint(0, nc, (n,), generator=generator).float()
    wh = torch.rand(n, 2, generator=generator) * 0.4 + 0.02
    xy = wh / 2 + torch.rand(n, 2, generator=generator) * (1 - wh)
    return torch.cat((image[:, None], cls[:, None], xy, wh), 1)


def ultralytics_loss(nc: int):
    """v8DetectionLoss for an Ultralytics detection model with the default hyperparameters."""
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils.loss import v8DetectionLoss

    model = DetectionModel("yolov8n.yaml", nc=nc, verbose=False)
    model.args = get_cfg()
    return v8DetectionLoss(model)


def ultralytics_step(criterion, branches: list[list[torch.Tensor]], targets: torch.Tensor, weights: list[float]):
    """One Ultralytics call per branch, weighted like PGI, then backward."""
    batch = {"batch_idx": targets[:, 0], "cls": targets[:, 1:2], "bboxes": targets[:, 2:]}
    total = 0.0
    for maps, weight in zip(branches, weights):
        bs = maps[0].shape[0]
        flat = torch.cat([m.view(bs, m.shape[1], -1) for m in maps], -1)
        boxes, scores = flat.split((64, flat.shape[1] - 64), 1)
        loss, _ = criterion({"boxes": boxes, "scores": scores, "feats": maps}, batch)
        total = total + weight * loss.sum()
    total.backward()


def ours_step(criterion: DetectionLoss, branches: list[list[torch.Tensor]], targets: torch.Tensor) -> None:
    loss, _ = criterion(branches, targets)
    loss.backward()


def timed(step) -> tuple[float, float]:
    """(wall, CPU) milliseconds of one call; CPU time (all threads) is steadier on a shared machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    step()
    return 1e3 * (time.perf_counter() - wall), 1e3 * (time.process_time() - cpu)


def summary(name: str, samples: list[tuple[float, float]]) -> str:
    wall, cpu = zip(*samples)
    return f"{name} {statistics.median(wall):.1f} / {min(wall):.1f} (CPU {statistics.median(cpu):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and a smaller batch (a smoke run)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--nc", type=int, default=80)
    parser.add_argument("--boxes", type=int, default=10, help="boxes per image")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    if args.quick:
        args.batch, args.rounds = 4, 3

    generator = torch.Generator().manual_seed(0)
    targets = random_targets(args.batch, args.boxes, args.nc, generator)
    peer = ultralytics_loss(args.nc)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch {args.batch}, {args.imgsz}x"
          f"{args.imgsz}, nc {args.nc}, {len(targets)} boxes; {args.rounds} rounds, interleaved; wall median / min ms (CPU median ms)")
    for model_name, branch_weights in (("gelan-t", [1.0]), ("yolov9-t", [0.25, 1.0])):
        ours = DetectionLoss(build_model(model_name, nc=args.nc))
        branches = [random_maps(args.batch, args.nc, args.imgsz, generator) for _ in branch_weights]
        ours_step(ours, branches, targets)  # warm-up (anchor grids, allocator)
        ultralytics_step(peer, branches, targets, branch_weights)
        ours_ms, peer_ms = [], []
        for _ in range(args.rounds):
            ours_ms.append(timed(lambda: ours_step(ours, branches, targets)))
            peer_ms.append(timed(lambda: ultralytics_step(peer, branches, targets, branch_weights)))
        n = len(branch_weights)
        ratio = statistics.median(t[0] for t in ours_ms) / statistics.median(t[0] for t in peer_ms)
        cpu_ratio = statistics.median(t[1] for t in ours_ms) / statistics.median(t[1] for t in peer_ms)
        print(f"{n} branch{'es' if n > 1 else ''} ({model_name}): {summary('ours', ours_ms)}, "
              f"{summary('Ultralytics', peer_ms)} -> ratio {ratio:.2f}x wall, {cpu_ratio:.2f}x CPU")

if __name__ == "__main__":
    main()
