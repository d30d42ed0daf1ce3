"""Fine-tuning transfer: copy every tensor whose name and shape match from a checkpoint into a model."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import torch
from torch import nn

from yolov9.io.checkpoint import read_weights


@dataclass
class TransferReport:
    """Which of the model's tensors came from the checkpoint, and why the others did not."""

    source: str
    transferred: list[str] = field(default_factory=list)
    shape_mismatch: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)  # (file, model)
    missing_in_checkpoint: list[str] = field(default_factory=list)
    unused_from_checkpoint: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.transferred) + len(self.shape_mismatch) + len(self.missing_in_checkpoint)

    def __str__(self) -> str:
        lines = [f"transferred {len(self.transferred)}/{self.total} tensors from {self.source}"]
        lines += [f"  skipped {k}: shape {tuple(f)} in checkpoint vs {tuple(m)} in model"
                  for k, (f, m) in self.shape_mismatch.items()]
        lines += [f"  skipped {k}: not in checkpoint" for k in self.missing_in_checkpoint]
        if self.unused_from_checkpoint:
            lines.append(f"  {len(self.unused_from_checkpoint)} checkpoint tensors have no counterpart in the model")
        return "\n".join(lines)


def load_pretrained(model: nn.Module, path: Union[str, Path], verbose: bool = True) -> TransferReport:
    """Copy matching tensors (same key, same shape) from our or an official checkpoint into `model`, in place.

    The typical use is fine-tuning on another class count: everything but the class-logit convs transfers.
    """
    source = read_weights(path)[1]
    report = TransferReport(source=str(path))
    own = model.state_dict()
    matched = {}
    for key, tensor in own.items():
        if key not in source:
            report.missing_in_checkpoint.append(key)
        elif source[key].shape != tensor.shape:
            report.shape_mismatch[key] = (tuple(source[key].shape), tuple(tensor.shape))
        else:
            matched[key] = source[key]
            report.transferred.append(key)
    report.unused_from_checkpoint = [k for k in source if k not in own]
    with torch.no_grad():
        for key, tensor in matched.items():
            own[key].copy_(tensor)
    if verbose:
        print(report)
    return report
