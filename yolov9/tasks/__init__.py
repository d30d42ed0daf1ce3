"""Tasks: what differs between kinds of models (see `base.Task`); `task_of(model)` picks one."""
from __future__ import annotations

from typing import Any

from yolov9.errors import YOLOv9Error
from yolov9.tasks.base import ExportGraph, Task
from yolov9.tasks.detect import DetectTask
from yolov9.tasks.results import Boxes, Masks, Results
from yolov9.tasks.segment import SegmentTask

TASKS: dict[str, Task] = {"detect": DetectTask(), "segment": SegmentTask()}


def task_of(model: Any) -> Task:
    """The Task of a DetectionModel or a Backend (its `task` name: 'detect', 'segment')."""
    name = getattr(model, "task", "detect")
    if name not in TASKS:
        raise YOLOv9Error(f"{getattr(model, 'source', 'model')}: unknown task {name!r}; known: {', '.join(TASKS)}")
    return TASKS[name]


__all__ = ["Boxes", "ExportGraph", "Masks", "Results", "TASKS", "Task", "task_of"]
