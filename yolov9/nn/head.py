"""One decoupled detection head with any number of branches (the official Detect / DDetect / DualDDetect / ...).

Branch `b` owns the modules `cv{2+2b}` (box: DFL logits), `cv{3+2b}` (class logits) and `dfl` / `dfl{b+1}`,
which are exactly the official state_dict names. Branch order is config order; the LAST branch is the main one.
`HEAD_SPECS` says what each official head name means; `yolov9.nn.segment_head` adds instance masks.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
from torch import nn

from yolov9.nn.blocks import DFL, Conv
from yolov9.ops.anchors import dist2bbox, make_anchors

REG_MAX = 16
MASK_SOURCES = ("p3", "input")


@dataclass(frozen=True)
class HeadSpec:
    """What an official head row builds.

    branches: head branches (PGI auxiliary ones first, the main one last); grouped: DDetect-style box branch
    (grouped 3x3 and 1x1 convs) rather than the plain Detect one; masks: None for detection, else where each
    branch's mask prototypes come from: "p3" = a `Proto` on the branch's first level map (Segment), "input" = a
    1x1 Conv on one extra head input per branch, listed after all level maps (DSegment / DualDSegment).
    """

    branches: int
    grouped: bool = True
    masks: Optional[str] = None

    @property
    def task(self) -> str:
        return "detect" if self.masks is None else "segment"

    def levels(self, n_inputs: int) -> int:
        """Feature levels per branch for a head with `n_inputs` inputs."""
        level_inputs = n_inputs - (self.branches if self.masks == "input" else 0)
        if level_inputs < self.branches or level_inputs % self.branches:
            raise ValueError(f"{n_inputs} head inputs do not split into {self.branches} branch(es)"
                             + (" plus one prototype input per branch" if self.masks == "input" else ""))
        return level_inputs // self.branches

    def branch_inputs(self, n_inputs: int, b: int) -> list[int]:
        """Positions, among the head's inputs, of the maps branch `b` reads (its levels, then its prototype input)."""
        nl = self.levels(n_inputs)
        positions = list(range(b * nl, (b + 1) * nl))
        return positions + [self.branches * nl + b] if self.masks == "input" else positions

    def single_branch(self) -> "HeadSpec":
        """The same head with only one branch (what stripping the auxiliary branches leaves)."""
        return dataclasses.replace(self, branches=1)


# Official head names -> what they build.
HEAD_SPECS = {
    "Detect": HeadSpec(1, grouped=False), "DualDetect": HeadSpec(2, grouped=False),
    "TripleDetect": HeadSpec(3, grouped=False),
    "DDetect": HeadSpec(1), "DualDDetect": HeadSpec(2), "TripleDDetect": HeadSpec(3),
    "Segment": HeadSpec(1, grouped=False, masks="p3"),
    "DSegment": HeadSpec(1, masks="input"), "DualDSegment": HeadSpec(2, masks="input"),
}


def head_name(spec: HeadSpec) -> str:
    """The official name of the head `spec` describes; a ValueError when the official code has none."""
    for name, known in HEAD_SPECS.items():
        if known == spec:
            return name
    raise ValueError(f"no official head has {spec}")


def make_divisible(x: float, divisor: int) -> int:
    """Smallest multiple of `divisor` that is >= x."""
    return int(math.ceil(x / divisor) * divisor)


def detection_module_names(b: int) -> tuple[str, str, str]:
    """(box, class, dfl) attribute names of branch `b`: ('cv2','cv3','dfl'), ('cv4','cv5','dfl2'), ..."""
    return f"cv{2 + 2 * b}", f"cv{3 + 2 * b}", "dfl" if b == 0 else f"dfl{b + 1}"


class DetectHead(nn.Module):
    """Anchor-free decoupled head over `branches` groups of `nl` feature maps each.

    Train mode returns, per branch, the raw maps (B, 4*16 + nc, H_i, W_i). Eval mode decodes a branch into
    (B, 4 + nc, A): boxes xywh in input pixels, then sigmoid class scores. `grouped=False` gives the plain
    `Detect` box branch (no grouped convs).
    """

    task = "detect"
    masks: Optional[str] = None

    def __init__(self, nc: int, ch: Sequence[int], branches: int = 1, grouped: bool = True):
        super().__init__()
        if len(ch) % branches:
            raise ValueError(f"{len(ch)} head inputs cannot be split into {branches} branches")
        self.nc = nc
        self.branches = branches
        self.grouped = grouped
        self.nl = len(ch) // branches
        self.reg_max = REG_MAX
        self.no = nc + 4 * REG_MAX
        self.stride = torch.zeros(self.nl)
        self.dynamic = False  # recompute anchors on every call (for tracing with dynamic shapes)
        self._anchor_cache: Optional[tuple] = None
        groups = 4 if grouped else 1
        for b in range(branches):
            level_ch = ch[b * self.nl:(b + 1) * self.nl]
            c_box = max(level_ch[0] // 4, 4 * REG_MAX, 16)
            c_box = make_divisible(c_box, 4) if grouped else c_box
            c_cls = max(level_ch[0], min(nc * 2, 128))
            box_name, cls_name, dfl_name = detection_module_names(b)
            setattr(self, box_name, nn.ModuleList(
                nn.Sequential(Conv(c, c_box, 3), Conv(c_box, c_box, 3, g=groups),
                              nn.Conv2d(c_box, 4 * REG_MAX, 1, groups=groups))
                for c in level_ch))
            setattr(self, cls_name, nn.ModuleList(
                nn.Sequential(Conv(c, c_cls, 3), Conv(c_cls, c_cls, 3), nn.Conv2d(c_cls, nc, 1)) for c in level_ch))
            setattr(self, dfl_name, DFL(REG_MAX))

    @property
    def spec(self) -> HeadSpec:
        return HeadSpec(self.branches, self.grouped, self.masks)

    @property
    def main_branch(self) -> int:
        return self.branches - 1

    def branch_module_names(self, b: int) -> tuple[str, ...]:
        """Attribute names of every module of branch `b` (what stripping renames)."""
        return detection_module_names(b)

    def branch_modules(self, b: int) -> tuple[nn.ModuleList, nn.ModuleList, DFL]:
        """(box, class, dfl) modules of branch `b`."""
        return tuple(getattr(self, name) for name in detection_module_names(b))  # type: ignore[return-value]

    def forward(self, xs: list[torch.Tensor], all_branches: bool = False):
        """xs: the head's input maps. Train: `raw_maps(xs)`. Eval: the main branch decoded, or a list of all."""
        if self.training:
            return self.raw_maps(xs)
        wanted = range(self.branches) if all_branches else [self.main_branch]
        decoded = [self.decode(self.branch_output(xs, b), b) for b in wanted]
        return decoded if all_branches else decoded[0]

    def raw_maps(self, xs: list[torch.Tensor]) -> list[Any]:
        """The undecoded output of every branch; here [branch][level] -> (B, 64 + nc, H, W)."""
        return [self.branch_output(xs, b) for b in range(self.branches)]

    def branch_output(self, xs: list[torch.Tensor], b: int) -> Any:
        """Undecoded output of branch `b` (for detection its per-level maps)."""
        return self.branch_maps(xs, b)

    def branch_maps(self, xs: list[torch.Tensor], b: int) -> list[torch.Tensor]:
        box, cls, _ = self.branch_modules(b)
        inputs = xs[b * self.nl:(b + 1) * self.nl]
        return [torch.cat((box[i](x), cls[i](x)), 1) for i, x in enumerate(inputs)]

    def anchors(self, maps: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Anchor centres (A, 2) and strides (A, 1) in input pixels / per anchor, cached per input shape."""
        key = tuple(tuple(m.shape[2:]) for m in maps) + (maps[0].device, maps[0].dtype)
        if self.dynamic or self._anchor_cache is None or self._anchor_cache[0] != key:
            points, strides = make_anchors(maps, self.stride.to(maps[0].device), 0.5)
            self._anchor_cache = (key, points, strides)
        return self._anchor_cache[1], self._anchor_cache[2]

    def decode(self, output: Any, b: Optional[int] = None) -> Any:
        """One branch's `branch_output` (default: the main branch) -> its eval output, here `decode_maps`."""
        return self.decode_maps(output, b)

    def decode_maps(self, maps: list[torch.Tensor], b: Optional[int] = None) -> torch.Tensor:
        """Raw maps of branch `b` (default main) -> (B, 4 + nc, A) xywh pixels + sigmoid scores."""
        b = self.main_branch if b is None else b
        dfl = self.branch_modules(b)[2]
        points, strides = self.anchors(maps)
        flat = torch.cat([m.flatten(2) for m in maps], 2)
        box, cls = flat.split((4 * self.reg_max, self.nc), 1)
        dbox = dist2bbox(dfl(box), points.transpose(0, 1).unsqueeze(0), xywh=True, dim=1) * strides.transpose(0, 1)
        return torch.cat((dbox, cls.sigmoid()), 1)

    def bias_init(self) -> None:
        """Prior biases: box logits 1.0; class logits so that ~5 objects per 640x640 image are expected."""
        for b in range(self.branches):
            box, cls, _ = self.branch_modules(b)
            for box_seq, cls_seq, s in zip(box, cls, self.stride.tolist()):
                box_seq[-1].bias.data[:] = 1.0
                cls_seq[-1].bias.data[:self.nc] = math.log(5 / self.nc / (640 / s) ** 2)
