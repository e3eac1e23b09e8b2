"""``TASKS``: what ``ocrkit train`` can train, and :class:`TaskParts`, what a task hands the trainer.

A leaf module: the families register here by name and import path, so the registry imports none
of them and none of them imports it back through ``ocrkit.train.tasks`` (no import cycle). A
task's module is imported the first time its name is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from ocrkit.registry import Registry


@dataclass
class TaskParts:
    """What the trainer needs from a task."""

    model: nn.Module
    train_dataset: Dataset
    collate_fn: Callable[[list[Any]], Any] | None = None
    eval_fn: Callable[[nn.Module], Mapping[str, float]] | None = None
    info: dict[str, Any] = field(default_factory=dict)  # printed by the CLI


TASKS: Registry[TaskParts] = Registry("task")
TASKS.register_lazy("str", "ocrkit.train.tasks:str_task")
TASKS.register_lazy("mim", "ocrkit.pretrain.tasks:mim_task")
TASKS.register_lazy("mnsp", "ocrkit.pretrain.tasks:mnsp_task")
TASKS.register_lazy("qmask", "ocrkit.anchoring.tasks:qmask_task")
