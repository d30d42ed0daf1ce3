"""`yolov9 train` on the command line: run folder, plots, per-branch validation loss, --weights transfer report."""
from __future__ import annotations

import csv

import pytest
import torch
import yaml

from _train_data import tiny_config, write_dataset
from yolov9 import build_model
from yolov9.cli import main
from yolov9.io.checkpoint import save_checkpoint


@pytest.mark.slow
def test_cli_train_one_epoch_with_weights(tmp_path, capsys):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    data = write_dataset(tmp_path / "squares", n_images=8, size=96)
    config = tmp_path / "tiny-yolov9.yaml"
    config.write_text(yaml.safe_dump(tiny_config(branches=2)))
    start = tmp_path / "start.pt"
    save_checkpoint(start, build_model(tiny_config(branches=2), nc=5))  # other class count: class convs skip
    argv = ["train", "--model", str(config), "--data", str(data), "--weights", str(start), "--epochs", "1",
            "--imgsz", "64", "--batch", "4", "--workers", "0", "--project", str(tmp_path / "runs"), "--quiet"]
    try:
        assert main(argv) == 0
        assert main(argv) == 0  # second run: auto-incremented folder
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "transferred" in out and "skipped model.29.cv3" in out and "skipped model.29.cv5" in out  # head: 29
    run = tmp_path / "runs" / "exp"
    assert (tmp_path / "runs" / "exp2" / "weights" / "best.pt").is_file()
    for name in ("args.yaml", "hyp.yaml", "results.csv", "results.png", "labels.png", "train_batch0.jpg",
                 "PR_curve.png", "F1_curve.png", "confusion_matrix.png", "weights/last.pt", "weights/best.pt"):
        assert (run / name).is_file(), name
    assert yaml.safe_load((run / "args.yaml").read_text())["epochs"] == 1
    (row,) = list(csv.DictReader((run / "results.csv").open()))
    for branch in ("val/", "val/aux0_"):  # validation loss of the main AND the auxiliary branch (official: 0)
        assert all(float(row[f"{branch}{k}_loss"]) > 0 for k in ("box", "cls", "dfl")), row
    assert float(row["lr/pg0"]) > float(row["lr/pg1"]) > 0  # warm-up: bias lr starts at 0.1, others at 0


def test_cli_train_refuses_unknown_hyperparameter(tmp_path, capsys):
    assert main(["train", "--model", "gelan-t", "--data", str(tmp_path / "none.yaml"), "--set", "lr9=1"]) == 2
    assert "lr9" in capsys.readouterr().err
