"""Training in other processes: SIGKILL during a checkpoint write or an epoch, then resume; DDP under torchrun;
the same seed gives the same weights in another process."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from _train_data import write_dataset
from yolov9.engine.trainer import train
from yolov9.io.checkpoint import read_checkpoint

TESTS = Path(__file__).resolve().parent

# Trains the tiny 2-branch model; KILL_AT="save:N" dies half-way through writing the N-th checkpoint,
# KILL_AT="loss:N" dies at the N-th loss evaluation (inside an epoch).
SCRIPT = textwrap.dedent("""
    import io, os, signal, sys
    import torch
    sys.path.insert(0, {tests!r})
    from _train_data import tiny_config
    from yolov9 import build_model
    from yolov9.engine.trainer import train
    from yolov9.loss import DetectionLoss

    kind, _, n = os.environ.get("KILL_AT", "none:0").partition(":")
    calls = {{"save": 0, "loss": 0}}
    real_save, real_loss = torch.save, DetectionLoss.__call__

    def dying_save(obj, f, *args, **kwargs):
        calls["save"] += 1
        if kind == "save" and calls["save"] == int(n):
            buffer = io.BytesIO()
            real_save(obj, buffer)
            f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return real_save(obj, f, *args, **kwargs)

    def dying_loss(self, *args):
        calls["loss"] += 1
        if kind == "loss" and calls["loss"] == int(n):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_loss(self, *args)

    torch.save, DetectionLoss.__call__ = dying_save, dying_loss
    torch.manual_seed(int(os.environ.get("GLOBAL_SEED", "0")))  # must not matter: build_model seeds its init
    train(build_model(tiny_config(2), nc=2), data=sys.argv[1], epochs=int(sys.argv[2]), imgsz=64, batch=4,
          workers=0, val=False, plots=False, verbose=False, project=sys.argv[3], name="run")
""")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("squares"), n_images=8, size=96)


def run_script(tmp_path: Path, args: list[str], kill_at: str = "none:0", launcher: tuple = (),
               global_seed: int = 0) -> subprocess.CompletedProcess:
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT.format(tests=str(TESTS)))
    env = dict(os.environ, KILL_AT=kill_at, OMP_NUM_THREADS="1", GLOBAL_SEED=str(global_seed))
    return subprocess.run([sys.executable, *launcher, str(script), *args], env=env, capture_output=True, text=True,
                          timeout=300)


def assert_checkpoints_readable(weights: Path) -> None:
    for path in weights.glob("*.pt"):
        read_checkpoint(path)  # raises CheckpointError on a torn file


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", ["save:2", "loss:3"], ids=["during-checkpoint-write", "during-epoch"])
def test_sigkill_then_resume(data, tmp_path, kill_at):
    """Epoch 1 (2 batches) finishes and is saved; the kill hits epoch 2's save or its second batch."""
    done = run_script(tmp_path, [str(data), "2", str(tmp_path)], kill_at)
    assert done.returncode == -9, done.stderr[-2000:]
    weights = tmp_path / "run" / "weights"
    assert_checkpoints_readable(weights)
    last = read_checkpoint(weights / "last.pt")
    assert last["epoch"] == 0 and last["optimizer"] is not None
    torch.set_num_threads(1)
    result = train(None, resume=str(weights / "last.pt"), verbose=False)
    assert [r["epoch"] for r in result["results"]] == [0, 1]
    assert read_checkpoint(weights / "last.pt")["epoch"] == 1
    assert_checkpoints_readable(weights)


@pytest.mark.slow
def test_ddp_two_processes_on_cpu_saves_once(data, tmp_path):
    done = run_script(tmp_path, [str(data), "1", str(tmp_path / "ddp")],
                      launcher=("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"))
    assert done.returncode == 0, done.stderr[-3000:]
    runs = sorted(p.name for p in (tmp_path / "ddp").iterdir())
    assert runs == ["run"]  # only rank 0 makes the run folder
    weights = tmp_path / "ddp" / "run" / "weights"
    assert sorted(p.name for p in weights.iterdir()) == ["best.pt", "last.pt"]
    assert read_checkpoint(weights / "last.pt")["epoch"] == 0
    rows = (tmp_path / "ddp" / "run" / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 2  # header + one epoch


@pytest.mark.slow
def test_same_seed_same_weights_in_another_process(data, tmp_path):
    """Two processes (different global RNG states before the model is built) end with identical weights."""
    runs = []
    for global_seed in (1, 2):
        done = run_script(tmp_path, [str(data), "1", str(tmp_path / f"p{global_seed}")], global_seed=global_seed)
        assert done.returncode == 0, done.stderr[-2000:]
        runs.append(read_checkpoint(tmp_path / f"p{global_seed}" / "run" / "weights" / "last.pt")["model"])
    assert runs[0].keys() == runs[1].keys()
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
