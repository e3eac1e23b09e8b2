"""``TrainConfig``: the ``train:`` section of a recipe, validated (errors name the key)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ocrkit.config import ConfigError, to_dataclass

MIXED_PRECISION = ("no", "bf16", "fp16")
NAN_POLICIES = ("raise", "skip")


@dataclass
class TrainConfig:
    """Optimisation, schedule, checkpointing and logging of one run.

    ``batch_size`` is per device and per micro-batch; an optimizer step sees
    ``batch_size * grad_accum * num_processes`` samples. ``max_steps`` (optimizer steps), when
    set, ends the run before ``epochs`` does and fixes the schedule length.
    """

    seed: int = 0
    epochs: int = 10
    max_steps: int | None = None
    time_limit_min: float | None = None  # stop (with checkpoint and final model) after this
    batch_size: int = 64
    grad_accum: int = 1
    num_workers: int = 0
    threads: int | None = None  # torch.set_num_threads, when set
    lr: float = 1e-4
    weight_decay: float = 0.05
    layer_decay: float | None = None
    betas: list = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    schedule: str = "cosine"  # cosine | onecycle | constant
    warmup_steps: int | None = None
    warmup_ratio: float = 0.0
    min_lr_ratio: float = 0.0
    pct_start: float = 0.3  # onecycle
    clip_grad_norm: float | None = 1.0
    mixed_precision: str = "no"  # no | bf16 | fp16
    ema_decay: float | None = None
    ema_warmup: bool = True
    eval_every: int = 0  # optimizer steps; 0: only at the end
    save_every: int = 1000
    keep_last: int = 3
    checkpoint_format: str = "auto"  # auto | ocrkit | accelerate (save_state; auto under FSDP)
    best_metric: str = "val/accuracy"
    best_mode: str = "max"  # max | min
    log_every: int = 50
    nan_policy: str = "raise"  # raise | skip
    max_nan_skips: int = 10
    trackers: list = field(default_factory=lambda: ["tensorboard"])

    def validate(self, section: str = "train") -> None:
        def bad(key: str, message: str) -> ConfigError:
            return ConfigError(f"recipe key {section}.{key}: {message}")

        if self.mixed_precision not in MIXED_PRECISION:
            raise bad("mixed_precision", f"use one of {', '.join(MIXED_PRECISION)}")
        if self.nan_policy not in NAN_POLICIES:
            raise bad("nan_policy", f"use one of {', '.join(NAN_POLICIES)}")
        from ocrkit.train.sharded import FORMATS

        if self.checkpoint_format not in FORMATS:
            raise bad("checkpoint_format", f"use one of {', '.join(FORMATS)}")
        if self.best_mode not in ("max", "min"):
            raise bad("best_mode", "use max or min")
        from ocrkit.train.optim import SCHEDULES

        if self.schedule not in SCHEDULES:
            raise bad("schedule", f"use one of {', '.join(SCHEDULES)}")
        for key in ("batch_size", "grad_accum", "epochs", "keep_last", "log_every"):
            if getattr(self, key) < 1:
                raise bad(key, "must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise bad("max_steps", "must be >= 1 (or null for epochs)")
        if self.lr <= 0:
            raise bad("lr", "must be > 0")
        if len(self.betas) != 2:
            raise bad("betas", "give two numbers, e.g. [0.9, 0.999]")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise bad("ema_decay", "must be in [0, 1) or null to disable EMA")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, section: str = "train") -> TrainConfig:
        return to_dataclass(cls, data, section)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
