"""Acceptance: a tiny model trained through `train()` learns a 4-image dataset (mAP50 >= 0.9 on those images).

Why these settings (measured, see docs/train.md): BatchNorm running statistics start at var = 1 and move with
momentum 0.03 per forward pass, while the first layers' batch variance on these images is ~1e-3, so the eval-mode
model only matches the train-mode one after ~150-200 training batches, whatever the learning rate. The 4 images are
therefore copied 16 times (16 batches per epoch, so few per-epoch checkpoints/validations) for 13 epochs = 208 steps;
mAP50 reaches 1.0 after ~144 steps. No warm-up (it would last the whole run), nbs = batch (one optimizer step per
batch), no augmentation. With seed 0 the 4 images hold 6 red squares (some overlapping).
"""
from __future__ import annotations

import pytest
import torch

from _train_data import tiny_config, write_dataset
from yolov9 import build_model
from yolov9.engine.trainer import train
from yolov9.engine.validator import validate

NO_AUGMENTATION = dict(mosaic=0.0, mixup=0.0, copy_paste=0.0, scale=0.0, translate=0.0, fliplr=0.0,
                       hsv_h=0.0, hsv_s=0.0, hsv_v=0.0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.slow
def test_tiny_model_overfits_four_images(tmp_path):
    data = write_dataset(tmp_path / "four", n_images=4, size=96, train_copies=16)
    torch.manual_seed(0)
    result = train(build_model(tiny_config(1), nc=2), data=str(data), epochs=13, imgsz=64, batch=4, workers=0,
                   optimizer="AdamW", lr0=0.002, warmup_epochs=0.0, nbs=4, close_mosaic=0, patience=1000,
                   plots=False, verbose=False, project=str(tmp_path / "runs"), **NO_AUGMENTATION)
    assert result["metrics"]["mAP50"] >= 0.9, [round(r["metrics/mAP50"], 3) for r in result["results"]]
    # the saved best.pt, validated again from scratch, agrees
    again = validate(result["save_dir"] / "weights" / "best.pt", data=str(data), imgsz=64, batch=4, workers=0,
                     plots=False, verbose=False)
    assert again["mAP50"] >= 0.9
