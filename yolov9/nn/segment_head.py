"""The instance-segmentation head (the official Segment / DSegment / DualDSegment): the detection head of
`yolov9.nn.head` plus, per branch, mask coefficients for every anchor and a set of mask prototypes.

A branch's mask of one detection is sigmoid(coefficients . prototypes), cropped to its box (YOLACT). Branch `b` of
`B` adds the modules `cv{2+2B+b}` (coefficients) and `proto` / `proto{b+1}` (prototypes): Segment / DSegment have
`cv4` and `proto`, DualDSegment `cv6`, `cv7`, `proto`, `proto2`, the official state_dict names.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from yolov9.nn.blocks import Conv, Proto
from yolov9.nn.head import MASK_SOURCES, DetectHead, HeadSpec, detection_module_names

# One branch's undecoded output: per-level maps (B, 64 + nc, H_i, W_i), coefficients (B, nm, A),
# prototypes (B, nm, H/4, W/4).
SegmentOutput = tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]


class SegmentHead(DetectHead):
    """Detection head + per-branch mask coefficients and prototypes.

    masks="p3": prototypes from a `Proto` (npr hidden channels) on the branch's first level (Segment);
    masks="input": from a 1x1 Conv on one extra input per branch, listed after all level maps (DSegment,
    DualDSegment; npr unused). Train mode: per branch `(maps, coefficients, prototypes)`. Eval mode: per branch
    `(pred, prototypes)` with pred (B, 4 + nc + nm, A) = boxes xywh pixels, sigmoid scores, raw coefficients.
    """

    task = "segment"

    def __init__(self, nc: int, ch: Sequence[int], branches: int = 1, grouped: bool = True, masks: str = "p3",
                 nm: int = 32, npr: int = 256):
        if masks not in MASK_SOURCES:
            raise ValueError(f"mask prototypes come from one of {MASK_SOURCES}, not {masks!r}")
        nl = HeadSpec(branches, grouped, masks).levels(len(ch))
        super().__init__(nc, ch[:branches * nl], branches, grouped)
        self.masks, self.nm, self.npr = masks, nm, npr
        for b in range(branches):
            level_ch = ch[b * nl:(b + 1) * nl]
            c_mask = max(level_ch[0] // 4, nm)
            coefficient_name, proto_name = self.mask_module_names(b)
            prototypes = Proto(level_ch[0], npr, nm) if masks == "p3" else Conv(ch[branches * nl + b], nm, 1)
            setattr(self, proto_name, prototypes)
            setattr(self, coefficient_name, nn.ModuleList(
                nn.Sequential(Conv(c, c_mask, 3), Conv(c_mask, c_mask, 3), nn.Conv2d(c_mask, nm, 1)) for c in level_ch))

    def mask_module_names(self, b: int) -> tuple[str, str]:
        """(coefficients, prototypes) attribute names of branch `b`."""
        return f"cv{2 + 2 * self.branches + b}", "proto" if b == 0 else f"proto{b + 1}"

    def branch_module_names(self, b: int) -> tuple[str, ...]:
        return detection_module_names(b) + self.mask_module_names(b)

    def branch_output(self, xs: list[torch.Tensor], b: int) -> SegmentOutput:
        """(maps, coefficients (B, nm, A), prototypes (B, nm, H/4, W/4)) of branch `b`."""
        coefficient_convs, proto = (getattr(self, name) for name in self.mask_module_names(b))
        inputs = [xs[p] for p in self.spec.branch_inputs(len(xs), b)]
        levels = inputs[:self.nl]
        coefficients = torch.cat([conv(x).flatten(2) for conv, x in zip(coefficient_convs, levels)], 2)
        prototypes = proto(levels[0] if self.masks == "p3" else inputs[self.nl])
        return self.branch_maps(xs, b), coefficients, prototypes

    def decode(self, output: SegmentOutput, b: Optional[int] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(maps, coefficients, prototypes) -> (pred (B, 4 + nc + nm, A), prototypes), the official eval layout."""
        maps, coefficients, prototypes = output
        return torch.cat((self.decode_maps(maps, b), coefficients), 1), prototypes
