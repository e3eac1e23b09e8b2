"""Small parts of the trainer: its position record, the DDP step wrapper, device moves."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


class NonFiniteLossError(FloatingPointError):
    """A NaN/inf loss or gradient norm; the message names the step."""


@dataclass
class TrainerState:
    """Where a run is: saved as ``trainer_state.json`` in every checkpoint."""

    global_step: int = 0  # optimizer steps done
    epoch: int = 0  # current epoch
    batch_in_epoch: int = 0  # optimizer steps done inside the current epoch
    nan_skips: int = 0
    skipped_images: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    ema_updates: int = 0


class StepModule(nn.Module):
    """Routes ``forward`` to ``training_step`` so DDP wrapping syncs gradients."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        return self.model.training_step(batch)


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in batch):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def launched_world_size() -> int:
    """Processes started by the launcher (torchrun / accelerate launch), 1 without one."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def cpu_world() -> bool:
    """A multi-process launch without CUDA: Accelerate must be told ``cpu=True`` to form the
    gloo group (``MULTI_CPU``); otherwise every process would run alone. Pass it to the first
    ``PartialState``/``Accelerator`` of the process (their state is shared and fixed)."""
    import torch

    return launched_world_size() > 1 and not torch.cuda.is_available()
