"""Loading speed: our safe import of an official checkpoint vs a plain `torch.load(weights_only=False)`.

A plain load needs the official `models` package on sys.path; this benchmark writes a throwaway stand-in
package into a temp folder (every `models.*` class is an empty nn.Module subclass), only for the comparison.
Runs are interleaved; medians are printed with the ratio (goal: safe import < 2x plain load).

    python benchmarks/load_speed.py [--quick] [--file PATH]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import yolov9
from yolov9.io.official import read_official

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "official"
STANDIN_MODULE = '''
import torch.nn


class _StandIn(torch.nn.Module):
    pass


def __getattr__(name):
    return type(name, (_StandIn,), {"__module__": __name__})
'''


def install_fake_official_package(folder: Path) -> None:
    """`models.yolo` / `models.common` whose every attribute is an empty nn.Module subclass."""
    package = folder / "models"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("yolo", "common", "experimental"):
        (package / f"{name}.py").write_text(STANDIN_MODULE)
    sys.path.insert(0, str(folder))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 10")
    parser.add_argument("--file", type=Path, default=None, help="checkpoint (default: largest official fixture)")
    args = parser.parse_args()
    path = args.file or max(FIXTURES.glob("*.pt"), key=lambda p: p.stat().st_size if ".io." not in p.name
                            and ".loss." not in p.name else 0)
    rounds = 3 if args.quick else 10
    with tempfile.TemporaryDirectory() as folder:
        install_fake_official_package(Path(folder))
        contenders = {
            "plain torch.load(weights_only=False)": lambda: torch.load(path, map_location="cpu", weights_only=False),
            "safe import (read_official)": lambda: read_official(path),
            "yolov9.load (safe import + build model)": lambda: yolov9.load(path),
        }
        for fn in contenders.values():  # warm-up: imports, file cache
            fn()
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(rounds):
            for name, fn in contenders.items():
                times[name].append(timed(fn))
    base = statistics.median(times["plain torch.load(weights_only=False)"])
    print(f"{path.name} ({path.stat().st_size / 1e6:.1f} MB), {rounds} interleaved rounds, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<42} median {median * 1e3:8.1f} ms   ratio {median / base:5.2f}x")


if __name__ == "__main__":
    main()
