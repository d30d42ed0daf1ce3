"""Optimizer recipe of the official trainer: three parameter groups, nominal batch, LR schedules, warm-up.

Group order is fixed: [0] biases (no decay), [1] weights of non-norm layers (decay), [2] norm-layer weights
(no decay). Warm-up relies on group 0 being the bias group.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from yolov9.cfg.hyp import Hyperparameters
from yolov9.errors import ConfigError

OPTIMIZERS = ("SGD", "Adam", "AdamW")
LR_SCHEDULES = ("linear", "cosine", "flat-cosine", "fixed")
NORM_LAYERS = tuple(v for k, v in vars(nn).items() if "Norm" in k and isinstance(v, type))


def parameter_groups(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter], list[nn.Parameter]]:
    """(biases, decayed weights, norm weights), walking every module like the official `smart_optimizer`.

    Frozen parameters stay in their group (they get no gradient, so the optimizer leaves them alone).
    """
    biases, decayed, norm_weights = [], [], []
    for module in model.modules():
        bias = getattr(module, "bias", None)
        if isinstance(bias, nn.Parameter):
            biases.append(bias)
        weight = getattr(module, "weight", None)
        if isinstance(weight, nn.Parameter):
            (norm_weights if isinstance(module, NORM_LAYERS) else decayed).append(weight)
    return biases, decayed, norm_weights


def nominal_accumulation(batch: int, nominal_batch: int = 64) -> int:
    """Optimizer steps happen every `accumulate` batches so that about `nominal_batch` images make one step."""
    return max(round(nominal_batch / batch), 1)


def scaled_weight_decay(weight_decay: float, batch: int, accumulate: int, nominal_batch: int = 64) -> float:
    """Weight decay scaled by the real images per step relative to the nominal batch."""
    return weight_decay * batch * accumulate / nominal_batch


def build_optimizer(model: nn.Module, name: str = "SGD", lr: float = 0.01, momentum: float = 0.937,
                    weight_decay: float = 5e-4) -> torch.optim.Optimizer:
    """SGD (Nesterov), Adam or AdamW over the three groups; only group 1 decays."""
    biases, decayed, norm_weights = parameter_groups(model)
    if name == "SGD":
        optimizer = torch.optim.SGD(biases, lr=lr, momentum=momentum, nesterov=True)
    elif name == "Adam":
        optimizer = torch.optim.Adam(biases, lr=lr, betas=(momentum, 0.999), foreach=True)
    elif name == "AdamW":
        optimizer = torch.optim.AdamW(biases, lr=lr, betas=(momentum, 0.999), weight_decay=0.0, amsgrad=True,
                                      foreach=True)  # one kernel per step for all tensors (faster on the CPU too)
    else:
        raise ConfigError(f"optimizer {name!r} is not supported; use one of {', '.join(OPTIMIZERS)}")
    optimizer.add_param_group({"params": decayed, "weight_decay": weight_decay})
    optimizer.add_param_group({"params": norm_weights, "weight_decay": 0.0})
    return optimizer


def lr_factor(schedule: str, epochs: int, lrf: float) -> Callable[[float], float]:
    """Epoch -> multiplier of lr0: 'linear' 1 -> lrf, 'cosine' 1 -> lrf, 'flat-cosine' (flat for the first
    half, then cosine to lrf) or 'fixed' (always 1)."""
    if schedule == "linear":
        return lambda e: (1 - e / epochs) * (1.0 - lrf) + lrf
    if schedule == "cosine":
        return lambda e: ((1 - math.cos(e * math.pi / epochs)) / 2) * (lrf - 1) + 1
    if schedule == "flat-cosine":
        half = max(epochs // 2, 1)
        return lambda e: ((1 - math.cos((e - half) * math.pi / half)) / 2) * (lrf - 1) + 1 if e > half else 1.0
    if schedule == "fixed":
        return lambda e: 1.0
    raise ConfigError(f"lr schedule {schedule!r} is not supported; use one of {', '.join(LR_SCHEDULES)}")


def warmup_iterations(batches_per_epoch: int, warmup_epochs: float) -> int:
    """max(warmup_epochs epochs, 100 iterations); -1 (no warm-up) when warmup_epochs <= 0."""
    return max(round(warmup_epochs * batches_per_epoch), 100) if warmup_epochs > 0 else -1


def interpolate(x: float, x1: float, y0: float, y1: float) -> float:
    """Linear interpolation from (0, y0) to (x1, y1), clamped to the ends (like numpy.interp)."""
    if x1 <= 0 or x >= x1:
        return y1
    return y0 + (y1 - y0) * max(x, 0) / x1


def apply_warmup(optimizer: torch.optim.Optimizer, iteration: int, warmup_iters: int, epoch_factor: float,
                 hyp: Hyperparameters, batch: int) -> int:
    """Set each group's lr (and momentum) for warm-up `iteration`; returns the accumulation for it.

    Bias lr goes warmup_bias_lr -> lr0*factor, other groups 0 -> lr0*factor, momentum warmup_momentum ->
    momentum, accumulation 1 -> nbs/batch.
    """
    nominal_batch = hyp.nbs
    accumulate = max(1, round(interpolate(iteration, warmup_iters, 1, nominal_batch / batch)))
    for j, group in enumerate(optimizer.param_groups):
        start = hyp.warmup_bias_lr if j == 0 else 0.0
        group["lr"] = interpolate(iteration, warmup_iters, start, group["initial_lr"] * epoch_factor)
        if "momentum" in group:
            group["momentum"] = interpolate(iteration, warmup_iters, hyp.warmup_momentum, hyp.momentum)
    return accumulate
