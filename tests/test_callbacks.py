"""Callbacks: every documented event fires, in order, with the object that fires it; a failing callback stops
training with an error naming it and leaves last.pt as the last finished epoch wrote it."""
from __future__ import annotations

import pytest
import torch

from _train_data import tiny_config, write_dataset
from yolov9 import YOLOv9, build_model
from yolov9.callbacks import EVENTS, CallbackError, Callbacks
from yolov9.engine.predictor import Predictor
from yolov9.engine.trainer import Trainer
from yolov9.eval.runner import EvalRunner
from yolov9.export.exporter import Exporter

FAST = dict(imgsz=64, batch=4, workers=0, verbose=False, plots=False)
OWNERS = {"train": Trainer, "val": EvalRunner, "predict": Predictor, "export": Exporter}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("squares"), n_images=8, size=64)


def recorder(model: YOLOv9) -> list[tuple[str, type]]:
    seen: list[tuple[str, type]] = []
    for group, events in EVENTS.items():
        for event in events:
            model.add_callback(event, lambda owner, event=event: seen.append((event, type(owner))))
    return seen


def collapse(events: list[str]) -> list[str]:
    """Runs of the same event (one per batch) as one entry."""
    return [e for i, e in enumerate(events) if i == 0 or e != events[i - 1]]


def test_every_event_fires_in_order_with_its_owner(data, tmp_path):
    torch.manual_seed(0)
    model = YOLOv9(build_model(tiny_config(2), nc=2))
    seen = recorder(model)
    model.train(data=str(data), epochs=1, project=str(tmp_path), **FAST)
    validation = ["on_val_start", "on_val_batch_end", "on_val_end"]
    assert collapse([e for e, _ in seen]) == (["on_train_start", "on_train_epoch_start", "on_train_batch_end",
                                              "on_train_epoch_end"] + validation
                                             + ["on_fit_epoch_end", "on_model_save"] + validation + ["on_train_end"])
    seen.clear()
    model.val(data=str(data), imgsz=64, batch=4, workers=0, verbose=False, plots=False)
    model.predict(str(data.parent / "images"), imgsz=64, progress=False)
    model.export(imgsz=64, file=tmp_path / "m.onnx", verbose=False)
    assert collapse([e for e, _ in seen]) == validation + list(EVENTS["predict"]) + list(EVENTS["export"])
    group_of = {event: group for group, events in EVENTS.items() for event in events}
    assert all(owner is OWNERS[group_of[event]] for event, owner in seen)


def test_a_failing_callback_stops_training_and_names_itself(data, tmp_path):
    saved: dict[int, bytes] = {}

    def remember_last(trainer) -> None:
        saved[trainer.epoch] = (trainer.weights_dir / "last.pt").read_bytes()

    def broken_logger(trainer) -> None:
        if trainer.epoch == 1:
            raise ValueError("metrics server unreachable")

    callbacks = Callbacks({"on_model_save": [remember_last], "on_fit_epoch_end": [broken_logger]})
    from yolov9.engine.trainer import train

    with pytest.raises(CallbackError, match=r"broken_logger.*on_fit_epoch_end.*ValueError: metrics server"):
        train(build_model(tiny_config(1), nc=2), data=str(data), epochs=3, project=str(tmp_path), name="run",
              callbacks=callbacks, val=False, **FAST)
    last = tmp_path / "run" / "weights" / "last.pt"
    assert list(saved) == [0] and last.read_bytes() == saved[0]  # epoch 1 never saved over epoch 0's file
    assert torch.load(last, weights_only=True)["epoch"] == 0


def test_unknown_events_and_non_callables_are_refused():
    with pytest.raises(Exception, match="unknown callback event 'on_epoch_end'"):
        YOLOv9("gelan-t").add_callback("on_epoch_end", print)
    with pytest.raises(Exception, match="must be callable"):
        Callbacks().add("on_train_start", "print")
