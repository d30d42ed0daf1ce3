"""The evaluator interface (in the manner of detectron2's DatasetEvaluator): a runner feeds it batches and the
model's predictions; `evaluate()` turns what it saw into metrics. A new task adds an evaluator, not a loop."""
from __future__ import annotations

from typing import Any, Sequence


class Evaluator:
    """reset() -> process(batch, predictions) for every batch -> evaluate() -> metrics dict."""

    def reset(self) -> None:
        raise NotImplementedError

    def process(self, batch: dict, predictions: Sequence[Any]) -> None:
        """batch: the val loader's dict (images, targets, paths, letterboxes); predictions: per image, in the
        batch's (letterboxed) pixels, as the task's post-processing gives them."""
        raise NotImplementedError

    def evaluate(self) -> dict[str, Any]:
        raise NotImplementedError
