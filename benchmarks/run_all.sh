#!/usr/bin/env bash
# Every peer comparison, one after another (run on a quiet machine; each prints its ratios).
# Logs go to benchmarks/results/<name>.log. Needs `make install bench-venv`.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p benchmarks/results
export YOLO_OFFLINE=1
run() { local name=$1; shift; echo "== $name: $*"; "$@" 2>&1 | tee "benchmarks/results/$name.log" | tail -25; }
run load_speed .venv/bin/python benchmarks/load_speed.py
run eval_speed env OMP_NUM_THREADS=2 .venv/bin/python benchmarks/eval_speed.py --repeats 1
run loss .venv-bench/bin/python benchmarks/loss.py --rounds 6
run latency .venv-bench/bin/python benchmarks/latency.py --runs 8
run dataloader .venv-bench/bin/python benchmarks/dataloader.py --images 256 --rounds 2
run train_speed .venv-bench/bin/python benchmarks/train_speed.py --repeats 1
