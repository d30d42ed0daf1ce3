"""Callbacks: user functions (and our own loggers) called at named events of training, validation, prediction
and export. Each receives the object that fires the event (the Trainer, the validation runner, the Predictor,
the Exporter), so it can read its state (`trainer.epoch`, `trainer.metrics`, `trainer.save_dir`, ...).

    model = YOLOv9("yolov9-t")
    model.add_callback("on_fit_epoch_end", lambda trainer: print(trainer.epoch, trainer.metrics["mAP50-95"]))

A callback that raises stops the run with a `CallbackError` naming it and the event; checkpoints already
written stay intact (they are written atomically).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Iterable, Optional

from yolov9.errors import YOLOv9Error

EVENTS: dict[str, tuple[str, ...]] = {
    "train": ("on_train_start", "on_train_epoch_start", "on_train_batch_end", "on_train_epoch_end",
              "on_fit_epoch_end", "on_model_save", "on_train_end"),
    "val": ("on_val_start", "on_val_batch_end", "on_val_end"),
    "predict": ("on_predict_start", "on_predict_batch_end", "on_predict_end"),
    "export": ("on_export_start", "on_export_end"),
}
ALL_EVENTS = tuple(event for events in EVENTS.values() for event in events)

Callback = Callable[[Any], None]


class CallbackError(YOLOv9Error):
    """A callback raised; the message names it and the event."""


def _name(fn: Callable) -> str:
    owner = getattr(fn, "__self__", None)
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    return f"{type(owner).__name__}.{fn.__name__}" if owner is not None and "." not in name else name


class Callbacks:
    """Event name -> functions, called in the order they were added."""

    def __init__(self, handlers: Optional[dict[str, Iterable[Callback]]] = None):
        self.handlers: dict[str, list[Callback]] = defaultdict(list)
        for event, functions in (handlers or {}).items():
            for fn in functions:
                self.add(event, fn)

    def add(self, event: str, fn: Callback) -> None:
        if event not in ALL_EVENTS:
            raise YOLOv9Error(f"unknown callback event {event!r}; events: {', '.join(ALL_EVENTS)}")
        if not callable(fn):
            raise YOLOv9Error(f"callback for {event} must be callable, got {type(fn).__name__}")
        self.handlers[event].append(fn)

    def add_object(self, obj: Any) -> None:
        """Register every method of `obj` named after an event (how our loggers are written)."""
        for event in ALL_EVENTS:
            method = getattr(obj, event, None)
            if callable(method):
                self.add(event, method)

    def copy(self) -> "Callbacks":
        return Callbacks(self.handlers)

    def run(self, event: str, owner: Any) -> None:
        """Call every function registered for `event` with `owner`; the first that raises stops the run."""
        for fn in self.handlers.get(event, ()):
            try:
                fn(owner)
            except CallbackError:
                raise
            except Exception as e:
                raise CallbackError(f"callback {_name(fn)} failed at {event}: {type(e).__name__}: {e}") from e
