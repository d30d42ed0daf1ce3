"""Event callbacks (the registry in `base`) and the loggers registered by default (`training`). A new logger
(MLflow, W&B, ...) is one module here: a class with methods named after events (see docs/architecture.md)."""
from yolov9.callbacks.base import ALL_EVENTS, EVENTS, CallbackError, Callbacks

__all__ = ["ALL_EVENTS", "EVENTS", "CallbackError", "Callbacks"]
