"""AdamW parameter groups (no decay on norms/biases, layer-wise lr decay) and lr schedules.

Layer-wise lr decay (BEiT/MAE fine-tuning): a parameter at layer ``i`` of ``L`` transformer blocks
gets ``lr * layer_decay ** (L + 1 - i)``. Embeddings are layer 0, block ``n`` is layer ``n + 1``
and everything after the encoder (final norm, decoder, head) is layer ``L + 1`` (scale 1).
The layer comes from the model's ``layer_id_for(name, num_layers)`` when it has one, otherwise
from timm ViT naming under the encoder prefix (what precedes the first ``blocks.<n>.``, e.g.
``backbone.``): ``patch_embed``/``pos_embed``/``cls_token`` are 0, ``blocks.<n>`` is n + 1, and
any name outside the prefix (``decoder.pos_embed`` included) is L + 1. ``num_layers`` comes from the
model's ``num_layers`` attribute, otherwise from the largest block index + 1.

Schedules are multipliers of the base lr wrapped in ``LambdaLR`` so the scheduler state is a few
plain numbers: ``cosine`` (linear warm-up then half-cosine to ``min_lr_ratio``), ``onecycle``
(PyTorch ``OneCycleLR`` with ``anneal_strategy="cos"``, as in PARSeq) and ``constant``
(linear warm-up then flat).
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

_BLOCK = re.compile(r"(?:^|\.)blocks\.(\d+)\.")
_EMBED = re.compile(r"(patch_embed|pos_embed|cls_token|mask_token|pos_drop)(?:\.|$)")


def num_layers_of(model: nn.Module) -> int:
    """``model.num_layers`` or 1 + the largest ``blocks.<n>.`` index (0 without blocks)."""
    declared = getattr(model, "num_layers", None)
    if isinstance(declared, int):
        return declared
    ids = [int(m.group(1)) for n, _ in model.named_parameters() if (m := _BLOCK.search(n))]
    return max(ids) + 1 if ids else 0


def encoder_prefix(names: list[str]) -> str:
    """The part of the first ``...blocks.<n>.`` name before ``blocks`` (``"backbone."``)."""
    for name in names:
        match = _BLOCK.search(name)
        if match:
            return name[: match.start() + (1 if match.group(0).startswith(".") else 0)]
    return ""


def layer_id_from_name(name: str, num_layers: int, prefix: str = "") -> int:
    """Layer by timm ViT naming under the encoder ``prefix``: embeddings 0, ``blocks.n`` n+1,
    everything else (encoder's final norm, decoder, head) L+1."""
    if not name.startswith(prefix):
        return num_layers + 1
    rest = name[len(prefix) :]
    if _EMBED.match(rest):
        return 0
    match = _BLOCK.match(rest)
    if match:
        return int(match.group(1)) + 1
    return num_layers + 1


def no_decay_names(model: nn.Module) -> set[str]:
    """Full names of the parameters that any module's ``no_weight_decay()`` lists (as timm).

    Every submodule may define ``no_weight_decay() -> set[str]``: names relative to itself
    (``"pos_embed"``, ``"token_embed.weight"``); they are prefixed with the module's path, so a
    ``TextViT`` under ``encoder.`` excludes ``encoder.pos_embed``. Names that are not trainable
    parameters (a fixed sin-cos buffer, timm's optional ``dist_token``) are ignored; a name with
    ``*`` is a pattern (timm's newer models, e.g. ``"blocks.*.gamma"``).
    """
    params = {n for n, _ in model.named_parameters()}
    found: set[str] = set()
    for prefix, module in model.named_modules():
        fn = getattr(module, "no_weight_decay", None)
        if not callable(fn):
            continue
        for name in fn():
            full = f"{prefix}.{name}" if prefix else name
            found.update(fnmatch.filter(params, full) if "*" in full else {full} & params)
    return found


def param_groups(
    model: nn.Module, lr: float, weight_decay: float, layer_decay: float | None = None
) -> list[dict[str, Any]]:
    """AdamW groups of ``model``: one per (decay, layer scale).

    Uses the model's own ``param_groups(weight_decay=, lr=, layer_decay=)`` when defined. 1-d
    parameters (norm weights, biases) and the names of :func:`no_decay_names` get no weight
    decay; ``model.lr_scale_for(name)``, when defined, multiplies a parameter's lr (e.g. a lower
    encoder lr when fine-tuning). Each group carries ``lr_scale`` so schedules keep the ratios.
    """
    own = getattr(model, "param_groups", None)
    if callable(own):
        return own(weight_decay=weight_decay, lr=lr, layer_decay=layer_decay)
    skip = no_decay_names(model)
    use_layers = layer_decay is not None and layer_decay != 1.0
    num_layers = num_layers_of(model) if use_layers else 0
    names = [n for n, _ in model.named_parameters()]
    prefix = encoder_prefix(names)
    own_layer_fn = getattr(model, "layer_id_for", None)
    layer_fn: Callable[[str, int], int] = own_layer_fn or (
        lambda n, layers: layer_id_from_name(n, layers, prefix)
    )
    lr_scale_fn: Callable[[str], float] | None = getattr(model, "lr_scale_for", None)
    groups: dict[tuple[bool, int, float], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        decay = param.ndim > 1 and name not in skip and not name.endswith(".bias")
        layer = layer_fn(name, num_layers) if use_layers else 0
        scale = layer_decay ** (num_layers + 1 - layer) if use_layers else 1.0  # type: ignore[operator]
        scale *= lr_scale_fn(name) if lr_scale_fn is not None else 1.0
        group = groups.setdefault(
            (decay, layer, scale),
            {
                "params": [],
                "param_names": [],
                "weight_decay": weight_decay if decay else 0.0,
                "lr_scale": scale,
                "lr": lr * scale,
            },
        )
        group["params"].append(param)
        group["param_names"].append(name)
    return [groups[k] for k in sorted(groups)]


def build_optimizer(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    layer_decay: float | None = None,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups` (``initial_lr`` of each group already scaled)."""
    groups = param_groups(model, lr, weight_decay, layer_decay)
    for group in groups:
        group.pop("param_names", None)
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


class Schedule:
    """A picklable-free lr multiplier ``f(step)``; its ``__dict__`` is plain numbers."""

    def __init__(
        self,
        kind: str,
        total_steps: int,
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.0,
        warmup_init_ratio: float = 0.0,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
    ) -> None:
        if kind not in SCHEDULES:
            raise ValueError(f"unknown lr schedule {kind!r}; use one of {', '.join(SCHEDULES)}")
        if total_steps < 1:
            raise ValueError(f"lr schedule needs total_steps >= 1, got {total_steps}")
        self.kind, self.total_steps, self.warmup_steps = kind, total_steps, warmup_steps
        self.min_lr_ratio, self.warmup_init_ratio = min_lr_ratio, warmup_init_ratio
        self.pct_start, self.div_factor, self.final_div_factor = (
            pct_start,
            div_factor,
            final_div_factor,
        )

    def __call__(self, step: int) -> float:
        return SCHEDULES[self.kind](self, step)


def _warmup(s: Schedule, step: int) -> float | None:
    if s.warmup_steps > 0 and step < s.warmup_steps:
        return s.warmup_init_ratio + (1.0 - s.warmup_init_ratio) * step / s.warmup_steps
    return None


def _cosine(s: Schedule, step: int) -> float:
    warm = _warmup(s, step)
    if warm is not None:
        return warm
    span = max(1, s.total_steps - s.warmup_steps)
    progress = min(1.0, (step - s.warmup_steps) / span)
    return s.min_lr_ratio + (1.0 - s.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _constant(s: Schedule, step: int) -> float:
    warm = _warmup(s, step)
    return 1.0 if warm is None else warm


def _anneal_cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def _onecycle(s: Schedule, step: int) -> float:
    # Mirrors torch.optim.lr_scheduler.OneCycleLR (three_phase=False, anneal_strategy="cos").
    initial = 1.0 / s.div_factor
    final = initial / s.final_div_factor
    up_end = float(s.pct_start * s.total_steps) - 1
    down_end = float(s.total_steps - 1)
    if step <= up_end:
        return _anneal_cos(initial, 1.0, step / up_end if up_end > 0 else 1.0)
    return _anneal_cos(1.0, final, min(1.0, (step - up_end) / (down_end - up_end)))


SCHEDULES: dict[str, Callable[[Schedule, int], float]] = {
    "cosine": _cosine,
    "onecycle": _onecycle,
    "constant": _constant,
}


def build_scheduler(
    optimizer: torch.optim.Optimizer, schedule: Schedule
) -> torch.optim.lr_scheduler.LambdaLR:
    """``LambdaLR`` applying ``schedule`` to every group (layer scales live in each group's lr)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
