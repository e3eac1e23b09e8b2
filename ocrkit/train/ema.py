"""Exponential moving average of model weights (timm ``ModelEmaV3`` semantics, fp32 shadow).

After each optimizer step: ``ema = d * ema + (1 - d) * param`` for floating tensors, as one
vectorised ``torch._foreach_lerp_`` over all of them (timm ``ModelEmaV3`` with foreach);
non-floating buffers (counters) are copied. With ``warmup=True`` the decay ramps up as
``d_t = min(decay, (1 + t) / (10 + t))`` for update count ``t`` (starting at 0), so early
averages are not dominated by the random initialization.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

_Pairs = tuple[list[torch.Tensor], list[torch.Tensor], list[tuple[torch.Tensor, torch.Tensor]]]


def _tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers by name, each shared (tied) tensor once, as in ``parameters()``."""
    return {**dict(module.named_parameters()), **dict(module.named_buffers())}


class ModelEma:
    """Keeps a detached copy of ``model`` whose weights are the running average."""

    def __init__(self, model: nn.Module, decay: float = 0.9999, warmup: bool = False) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay, self.warmup = decay, warmup
        self.num_updates = 0
        self.module = copy.deepcopy(model).eval()
        self._cache: tuple[nn.Module, _Pairs] | None = None
        for p in self.module.parameters():
            p.requires_grad_(False)

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        t = self.num_updates
        return min(self.decay, (1 + t) / (10 + t))

    def _pairs(self, model: nn.Module) -> _Pairs:
        """(shadow floats, live floats of the same dtype, other pairs), cached per ``model``.

        The lists hold the ``Parameter``/buffer objects themselves (not ``state_dict`` views), so
        an in-place ``load_state_dict`` on either side keeps them valid."""
        if self._cache is not None and self._cache[0] is model:
            return self._cache[1]
        live = _tensors(model)
        shadows, values, others = [], [], []
        for name, shadow in _tensors(self.module).items():
            value = live[name]
            if shadow.is_floating_point() and value.dtype == shadow.dtype:
                shadows.append(shadow)
                values.append(value)
            else:
                others.append((shadow, value))
        self._cache = (model, (shadows, values, others))
        return shadows, values, others

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights of ``model`` (same architecture, unwrapped) into the average:
        ``ema + (1 - d) * (param - ema)`` in one foreach call; a tensor whose dtype differs from
        its shadow's is averaged alone in the shadow's dtype."""
        d = self.current_decay()
        shadows, values, others = self._pairs(model)
        if shadows:
            torch._foreach_lerp_(shadows, values, 1.0 - d)
        for shadow, value in others:
            if shadow.is_floating_point():
                shadow.lerp_(value.to(shadow.dtype), 1.0 - d)
            else:
                shadow.copy_(value)
        self.num_updates += 1

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor], num_updates: int) -> None:
        self.module.load_state_dict(state)  # in place: the cached tensors stay valid
        self.num_updates = num_updates
