"""The evaluation runner: batches of a val loader through a model, timed, post-processed, handed to evaluators.

A trainable model given with a loss (`criterion`) or a `branch` runs unfused through its raw maps, so that the
validation loss of EVERY head branch comes out of the same forward pass; anything else runs through a Backend
(a trainable model is prepared for inference first: stripped, fused, channels-last on the CPU).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch

from yolov9.callbacks import Callbacks
from yolov9.eval.evaluator import Evaluator
from yolov9.models.detection_model import DetectionModel
from yolov9.runtime.backend import Backend, float_outputs
from yolov9.runtime.torch_backend import TorchBackend

Postprocess = Callable[[Any], list]


class EvalRunner:
    """`runner(model)` -> the evaluators' metrics, merged, plus `speed_ms` (per image) and `val_loss`.

    postprocess: the task's decoded-output -> per-image predictions (letterboxed pixels); loss_arguments: batch ->
    the extra arguments of `criterion` after the raw maps (detection: (targets,)).
    """

    def __init__(self, loader, postprocess: Postprocess, evaluators: Sequence[Evaluator], criterion: Any = None,
                 loss_arguments: Callable[[dict], tuple] = lambda batch: (batch["targets"],),
                 branch: Optional[int] = None, device: Union[str, torch.device] = "cpu", half: bool = False,
                 callbacks: Optional[Callbacks] = None):
        self.loader, self.postprocess, self.evaluators = loader, postprocess, list(evaluators)
        self.criterion, self.loss_arguments, self.branch = criterion, loss_arguments, branch
        self.device, self.half = torch.device(device), half
        self.callbacks = callbacks or Callbacks()
        self.batch: dict = {}
        self.predictions: list = []
        self.metrics: dict[str, Any] = {}

    @torch.no_grad()
    def __call__(self, model: Union[DetectionModel, Backend]) -> dict[str, Any]:
        raw = isinstance(model, DetectionModel) and (self.criterion is not None or self.branch is not None)
        if raw:
            model.eval()
            dtype = torch.float16 if self.half else next(model.parameters()).dtype
            branches = model.branches
        else:
            model = model if isinstance(model, Backend) else TorchBackend(model, self.device, self.half)
            dtype, branches = torch.float32, 1
        for evaluator in self.evaluators:
            evaluator.reset()
        self.callbacks.run("on_val_start", self)
        loss = torch.zeros(branches, len(getattr(self.criterion, "item_names", ())))
        seconds, images_seen = np.zeros(3), 0
        for self.batch in self.loader:
            start = time.perf_counter()
            images = self.batch["images"].to(self.device, non_blocking=True).to(dtype) / 255
            mid = time.perf_counter()
            output = self._forward(model, images, loss) if raw else model(images)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)  # honest inference timing
            end = time.perf_counter()
            self.predictions = self.postprocess(output)
            seconds += (mid - start, end - mid, time.perf_counter() - end)
            for evaluator in self.evaluators:
                evaluator.process(self.batch, self.predictions)
            images_seen += len(images)
            self.callbacks.run("on_val_batch_end", self)
        self.metrics = {}
        for evaluator in self.evaluators:
            self.metrics.update(evaluator.evaluate())
        self.metrics["speed_ms"] = dict(zip(("preprocess", "inference", "nms"),
                                            (1000 * seconds / max(images_seen, 1)).tolist()))
        if self.criterion is not None:
            self.metrics["val_loss"] = loss / max(len(self.loader), 1)
        self.callbacks.run("on_val_end", self)
        return self.metrics

    def _forward(self, model: DetectionModel, images: torch.Tensor, loss: torch.Tensor) -> Any:
        """The evaluated branch's decoded output; adds every branch's loss items to `loss`."""
        branch = model.head.main_branch if self.branch is None else self.branch
        maps = model.raw_maps(images)
        if self.criterion is not None:
            extra = [a.to(self.device) for a in self.loss_arguments(self.batch)]
            loss += self.criterion.branch_items(float_outputs(maps), *extra).cpu()
        return float_outputs(model.head.decode(maps[branch], branch))
