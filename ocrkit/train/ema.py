"""Exponential moving average of model weights (timm ``ModelEmaV3`` semantics, fp32 shadow).

After each optimizer step: ``ema = d * ema + (1 - d) * param`` for floating tensors (buffers
such as integer counters are copied). With ``warmup=True`` the decay ramps up as
``d_t = min(decay, (1 + t) / (10 + t))`` for update count ``t`` (starting at 0), so early
averages are not dominated by the random initialization.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEma:
    """Keeps a detached copy of ``model`` whose weights are the running average."""

    def __init__(self, model: nn.Module, decay: float = 0.9999, warmup: bool = False) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay, self.warmup = decay, warmup
        self.num_updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        t = self.num_updates
        return min(self.decay, (1 + t) / (10 + t))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights of ``model`` (same architecture, unwrapped) into the average."""
        d = self.current_decay()
        live = model.state_dict()
        for name, shadow in self.module.state_dict().items():
            value = live[name].detach()
            if shadow.is_floating_point():
                shadow.mul_(d).add_(value.to(shadow.dtype), alpha=1.0 - d)
            else:
                shadow.copy_(value)
        self.num_updates += 1

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor], num_updates: int) -> None:
        self.module.load_state_dict(state)
        self.num_updates = num_updates
