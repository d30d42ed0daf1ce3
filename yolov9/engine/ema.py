"""Exponential moving average of a model's weights and BatchNorm statistics (the model that is validated and saved)."""
from __future__ import annotations

import copy
import math

import torch
from torch import nn


class ModelEMA:
    """`ema = d * ema + (1 - d) * model` over every floating state_dict entry, d = decay * (1 - exp(-updates / tau)).

    The ramp makes early EMA weights follow the model closely; `updates` counts optimizer steps.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000.0, updates: int = 0):
        self.ema = copy.deepcopy(model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.decay_max, self.tau, self.updates = decay, tau, updates
        self._ema_tensors = self._floating(self.ema)

    def decay(self, updates: int) -> float:
        return self.decay_max * (1 - math.exp(-updates / self.tau))

    @staticmethod
    def _floating(model: nn.Module) -> list[torch.Tensor]:
        return [v for v in model.state_dict().values() if v.dtype.is_floating_point]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One step after each optimizer step; `model` must be the unwrapped (non-DDP) training model."""
        self.updates += 1
        d = self.decay(self.updates)
        current = [v.detach() for v in self._floating(model)]
        torch._foreach_mul_(self._ema_tensors, d)
        torch._foreach_add_(self._ema_tensors, current, alpha=1 - d)

    def state_dict(self) -> dict:
        return {"updates": self.updates, "decay": self.decay_max, "tau": self.tau}

    def load_state_dict(self, state: dict, weights: dict) -> None:
        """Restore the counters and the averaged weights (`weights`: the EMA model's state_dict)."""
        self.updates, self.decay_max, self.tau = int(state["updates"]), float(state["decay"]), float(state["tau"])
        self.ema.load_state_dict(weights)
