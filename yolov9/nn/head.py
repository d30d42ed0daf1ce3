"""One decoupled detection head with any number of branches (the official DDetect / DualDDetect / TripleDDetect).

Branch `b` owns the modules `cv{2+2b}` (box: DFL logits), `cv{3+2b}` (class logits) and `dfl` / `dfl{b+1}`,
which are exactly the official state_dict names. Branch order is config order; the LAST branch is the main one.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import nn

from yolov9.nn.blocks import DFL, Conv
from yolov9.ops.anchors import dist2bbox, make_anchors

REG_MAX = 16

# Official head names -> number of branches.
HEAD_BRANCHES = {"DDetect": 1, "DualDDetect": 2, "TripleDDetect": 3}


def make_divisible(x: float, divisor: int) -> int:
    """Smallest multiple of `divisor` that is >= x."""
    return int(math.ceil(x / divisor) * divisor)


def branch_module_names(b: int) -> tuple[str, str, str]:
    """(box, class, dfl) attribute names of branch `b`: ('cv2','cv3','dfl'), ('cv4','cv5','dfl2'), ..."""
    return f"cv{2 + 2 * b}", f"cv{3 + 2 * b}", "dfl" if b == 0 else f"dfl{b + 1}"


class DetectHead(nn.Module):
    """Anchor-free decoupled head over `branches` groups of `nl` feature maps each.

    Train mode returns, per branch, the raw maps (B, 4*16 + nc, H_i, W_i). Eval mode decodes a branch into
    (B, 4 + nc, A): boxes xywh in input pixels, then sigmoid class scores.
    """

    def __init__(self, nc: int, ch: Sequence[int], branches: int = 1):
        super().__init__()
        if len(ch) % branches:
            raise ValueError(f"{len(ch)} head inputs cannot be split into {branches} branches")
        self.nc = nc
        self.branches = branches
        self.nl = len(ch) // branches
        self.reg_max = REG_MAX
        self.no = nc + 4 * REG_MAX
        self.stride = torch.zeros(self.nl)
        self.dynamic = False  # recompute anchors on every call (for tracing with dynamic shapes)
        self._anchor_cache: Optional[tuple] = None
        for b in range(branches):
            level_ch = ch[b * self.nl:(b + 1) * self.nl]
            c_box = make_divisible(max(level_ch[0] // 4, 4 * REG_MAX, 16), 4)
            c_cls = max(level_ch[0], min(nc * 2, 128))
            box_name, cls_name, dfl_name = branch_module_names(b)
            setattr(self, box_name, nn.ModuleList(
                nn.Sequential(Conv(c, c_box, 3), Conv(c_box, c_box, 3, g=4), nn.Conv2d(c_box, 4 * REG_MAX, 1, groups=4))
                for c in level_ch))
            setattr(self, cls_name, nn.ModuleList(
                nn.Sequential(Conv(c, c_cls, 3), Conv(c_cls, c_cls, 3), nn.Conv2d(c_cls, nc, 1)) for c in level_ch))
            setattr(self, dfl_name, DFL(REG_MAX))

    @property
    def main_branch(self) -> int:
        return self.branches - 1

    def branch_modules(self, b: int) -> tuple[nn.ModuleList, nn.ModuleList, DFL]:
        return tuple(getattr(self, name) for name in branch_module_names(b))  # type: ignore[return-value]

    def forward(self, xs: list[torch.Tensor], all_branches: bool = False):
        """xs: branches*nl maps. Train: list[branch] of list[level] raw maps. Eval: main (B,4+nc,A) or a list."""
        if self.training:
            return self.raw_maps(xs)
        wanted = range(self.branches) if all_branches else [self.main_branch]
        decoded = [self.decode(self.branch_maps(xs, b), b) for b in wanted]
        return decoded if all_branches else decoded[0]

    def raw_maps(self, xs: list[torch.Tensor]) -> list[list[torch.Tensor]]:
        """Raw per-level maps of every branch: [branch][level] -> (B, 64 + nc, H, W)."""
        return [self.branch_maps(xs, b) for b in range(self.branches)]

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

    def decode(self, maps: list[torch.Tensor], b: Optional[int] = None) -> torch.Tensor:
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
