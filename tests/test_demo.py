"""The demo trains a fixed, seeded number of epochs: its result does not depend on how fast the machine is."""
from __future__ import annotations

from pathlib import Path

import pytest

from yolov9.cli import build_parser
from yolov9.commands.demo import DEMO_EPOCHS

REPO = Path(__file__).resolve().parents[1]


class Stop(Exception):
    pass


def test_demo_is_epoch_bound_not_time_bound(monkeypatch):
    monkeypatch.chdir(REPO)
    args = build_parser().parse_args(["demo"])
    assert args.minutes is None and args.epochs == DEMO_EPOCHS
    seen = {}

    def record(model, **options):
        seen.update(options)
        raise Stop

    monkeypatch.setattr("yolov9.engine.trainer.train", record)
    with pytest.raises(Stop):
        args.func(args)
    assert seen["time"] is None and seen["epochs"] == DEMO_EPOCHS and seen["seed"] == 0
    assert (REPO / seen["data"]).is_file()
