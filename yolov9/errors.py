"""The one exception type users catch: every problem we detect is reported as a `YOLOv9Error`; `warn` for the
problems we work around."""
import sys


class YOLOv9Error(Exception):
    """A problem with the user's input (config, checkpoint, dataset, arguments) explained in plain words."""


class ConfigError(YOLOv9Error):
    """A model, hyperparameter or dataset config is malformed."""


class CheckpointError(YOLOv9Error):
    """A checkpoint file cannot be read, is refused for safety, or does not fit the model."""


class DatasetError(YOLOv9Error):
    """A dataset config, image or label file is unusable."""


def warn(message: str) -> None:
    """One line on stderr for a problem we work around (rounded sizes, skipped files, fallbacks)."""
    print(f"yolov9: warning: {message}", file=sys.stderr)
