"""The one generic trainer: any ``nn.Module`` with ``training_step(batch) -> {"loss": ...}``.

Built on Hugging Face Accelerate (mixed precision, DDP via ``accelerate launch``, trackers). The
trainer owns the data order (:mod:`ocrkit.train.sampling`) instead of handing the DataLoader to
``accelerator.prepare`` so the position inside an epoch is exact and resumable. Model hooks:

* ``training_step(batch) -> dict[str, Tensor]`` with ``"loss"`` (required; other scalars logged);
* ``param_groups(weight_decay=, lr=, layer_decay=)``, ``layer_id_for(name, num_layers)``
  (optional, see :mod:`ocrkit.train.optim`); ``no_weight_decay()`` on any submodule (names
  relative to it, found recursively as in timm: :func:`ocrkit.train.optim.no_decay_names`);
* ``on_train_batch_end(step)`` (optional), ``save_pretrained(dir)`` (optional; used for
  ``OUTPUT/best`` and ``OUTPUT/final``, otherwise ``model.safetensors`` is written).

Checkpoint save/restore (``OUTPUT/checkpoints/step-N``, ``best``, ``final``) is
:class:`ocrkit.train.checkpointing.CheckpointMixin`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ocrkit.config import flatten
from ocrkit.train import checkpoint as ckpt
from ocrkit.train import sharded
from ocrkit.train.checkpointing import CheckpointMixin
from ocrkit.train.ema import ModelEma
from ocrkit.train.logger import RunLogger, fork_all_rngs
from ocrkit.train.optim import Schedule, build_optimizer, build_scheduler
from ocrkit.train.parts import (
    NonFiniteLossError,
    StepModule,
    TrainerState,
    cpu_world,
    launched_world_size,
    to_device,
)
from ocrkit.train.sampling import EpochSampler, SeededDataset
from ocrkit.train.settings import TrainConfig

log = logging.getLogger(__name__)

EvalFn = Callable[[nn.Module], Mapping[str, float]]


class Trainer(CheckpointMixin):
    """Trains ``model`` on ``train_dataset``; see the module docstring for the model protocol.

    ``eval_fn(model) -> {"val/accuracy": ...}`` runs on the main process with the EMA weights
    when EMA is on; ``config.best_metric`` picks the best checkpoint from its result.
    """

    def __init__(
        self,
        model: nn.Module,
        train_dataset: Dataset,
        config: TrainConfig,
        output_dir: str | Path,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        eval_fn: EvalFn | None = None,
        run_config: Mapping[str, Any] | None = None,
    ) -> None:
        if not callable(getattr(model, "training_step", None)):
            raise TypeError(f"{type(model).__name__} has no training_step(batch) method")
        self.model, self.dataset, self.config = model, train_dataset, config
        self.output_dir = Path(output_dir)
        self.collate_fn, self.eval_fn = collate_fn, eval_fn
        self.run_config = dict(run_config or {"train": config.to_dict()})
        self.state = TrainerState()

    # --- setup ---------------------------------------------------------------------------------

    def _setup(self) -> None:
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        c = self.config
        if c.threads:
            torch.set_num_threads(c.threads)
        trackers = [t for t in c.trackers if t] or None
        launched = launched_world_size()
        self.acc = Accelerator(
            cpu=cpu_world(),
            mixed_precision=c.mixed_precision,
            log_with=trackers,
            project_dir=str(self.output_dir),
        )
        if self.acc.num_processes != launched:
            raise sharded.UnsupportedSetup(
                f"launched as {launched} processes (WORLD_SIZE) but Accelerate runs "
                f"{self.acc.num_processes}; each would train alone into {self.output_dir}"
            )
        self.format = sharded.resolve_format(
            self.acc, c.checkpoint_format, bool(c.ema_decay), c.eval_every, self.eval_fn is not None
        )
        self.fsdp = sharded.distributed_name(self.acc) == "FSDP"
        set_seed(c.seed, device_specific=True)
        world = self.acc.num_processes
        per_process = len(self.dataset) // world  # type: ignore[arg-type]
        micro_per_epoch = per_process // c.batch_size
        self.steps_per_epoch = micro_per_epoch // c.grad_accum
        if self.steps_per_epoch < 1:
            raise ValueError(
                f"{len(self.dataset)} training samples give no full step of batch_size "  # type: ignore[arg-type]
                f"{c.batch_size} x grad_accum {c.grad_accum} x {world} processes; lower "
                f"train.batch_size or add data"
            )
        self.total_steps = c.max_steps or c.epochs * self.steps_per_epoch
        warmup = (
            c.warmup_steps if c.warmup_steps is not None else int(c.warmup_ratio * self.total_steps)
        )
        self.optimizer = build_optimizer(
            self.model, c.lr, c.weight_decay, c.layer_decay, tuple(c.betas), c.eps
        )
        self.scheduler = build_scheduler(
            self.optimizer,
            Schedule(
                c.schedule,
                self.total_steps,
                warmup_steps=warmup,
                min_lr_ratio=c.min_lr_ratio,
                pct_start=c.pct_start,
            ),
        )
        self.wrapped, self.optimizer = self.acc.prepare(StepModule(self.model), self.optimizer)
        # After prepare: the shadow copy lives on the training device too.
        self.ema = ModelEma(self.model, c.ema_decay, c.ema_warmup) if c.ema_decay else None
        self.logger = RunLogger(self.acc, self.output_dir, self.total_steps)

    # --- evaluation ----------------------------------------------------------------------------

    def evaluate(self) -> dict[str, float]:
        """Run ``eval_fn`` on the main process (RNG state untouched); others wait."""
        metrics: dict[str, float] = {}
        if self.fsdp and self.eval_fn is not None:
            log.info("evaluation skipped under FSDP; evaluate %s/final", self.output_dir)
            return metrics
        if self.eval_fn is not None and self.acc.is_main_process:
            model = self.ema.module if self.ema is not None else self.model
            was_training = model.training
            model.eval()
            with fork_all_rngs(), torch.no_grad():
                metrics = {k: float(v) for k, v in self.eval_fn(model).items()}
            model.train(was_training)
            self.logger.log(metrics, self.state.global_step, echo=True)
            self._update_best(metrics)
        self.acc.wait_for_everyone()
        return metrics

    def _update_best(self, metrics: Mapping[str, float]) -> None:
        name, s = self.config.best_metric, self.state
        if name not in metrics:
            log.warning("best_metric %r not in evaluation metrics %s", name, sorted(metrics))
            return
        value = metrics[name]
        better = s.best_metric is None or (
            value > s.best_metric if self.config.best_mode == "max" else value < s.best_metric
        )
        if better:
            s.best_metric, s.best_step = value, s.global_step
            self._save_model("best", metrics)
            log.info("new best %s = %.4f at step %d", name, value, s.global_step)

    # --- training ------------------------------------------------------------------------------

    def fit(self, resume: str | Path | None = None) -> TrainerState:
        """Train until ``max_steps``/``epochs``; resume from a checkpoint path or ``"auto"``."""
        self._setup()
        acc = self.acc
        if acc.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            ckpt.clean_leftovers(self.output_dir)
        acc.wait_for_everyone()
        start = ckpt.resolve_resume(resume, self.output_dir)
        if start is not None:
            self.load_checkpoint(start)
        trackers_config = flatten(self.run_config)
        if acc.log_with:
            acc.init_trackers("tb", config=trackers_config)
        self.wrapped.train()
        started = time.monotonic()
        self.logger.start(self.state.global_step)
        try:
            while self.state.global_step < self.total_steps:
                stop = self._run_epoch(started)
                if stop:
                    break
            self.evaluate()
            self.save_checkpoint()
            self._save_model("final")
        finally:
            self.logger.close()
            if acc.log_with:
                acc.end_training()
        return self.state

    def _loader(self) -> DataLoader:
        c, s = self.config, self.state
        sampler = EpochSampler(
            len(self.dataset),  # type: ignore[arg-type]
            c.seed,
            s.epoch,
            rank=self.acc.process_index,
            world_size=self.acc.num_processes,
            start=s.batch_in_epoch * c.grad_accum * c.batch_size,
        )
        return DataLoader(
            SeededDataset(self.dataset),
            batch_size=c.batch_size,
            sampler=sampler,
            collate_fn=self.collate_fn,
            num_workers=c.num_workers,
            drop_last=True,
            # A private generator: creating the iterator must not draw from the global RNG.
            generator=torch.Generator().manual_seed(c.seed + 1_000_003 * s.epoch),
            persistent_workers=False,
        )

    def _run_epoch(self, started: float) -> bool:
        """Run the rest of the current epoch; return True when the run should stop."""
        c, s = self.config, self.state
        batches = iter(self._loader())
        epoch = s.epoch
        while s.epoch == epoch:
            outputs = self._train_step(batches)
            s.global_step += 1
            s.batch_in_epoch += 1
            if s.batch_in_epoch == self.steps_per_epoch:
                s.epoch, s.batch_in_epoch = s.epoch + 1, 0
            hook = getattr(self.model, "on_train_batch_end", None)
            if callable(hook):
                hook(s.global_step)
            self.logger.step(outputs, s, self.optimizer, c.log_every)
            done = s.global_step >= self.total_steps
            if done:
                return True
            if c.eval_every and s.global_step % c.eval_every == 0:
                self.evaluate()
            if c.save_every and s.global_step % c.save_every == 0:
                self.save_checkpoint()
            if c.time_limit_min is not None and self._out_of_time(started):
                log.info(
                    "time limit of %.1f min reached at step %d", c.time_limit_min, s.global_step
                )
                return True
        return False

    def _out_of_time(self, started: float) -> bool:
        over = (time.monotonic() - started) / 60.0 >= self.config.time_limit_min  # type: ignore[operator]
        flag = torch.tensor([float(over)], device=self.acc.device)
        return bool(self.acc.gather(flag).max().item() > 0)

    def _train_step(self, batches) -> dict[str, float]:
        """One optimizer step over ``grad_accum`` micro-batches; returns scalars to log."""
        c, acc, s = self.config, self.acc, self.state
        totals: dict[str, float] = {}
        finite = True
        for micro in range(c.grad_accum):
            batch = to_device(next(batches), acc.device)
            if isinstance(batch, Mapping):
                s.skipped_images += int(batch.get("num_skipped", 0) or 0)
            last = micro == c.grad_accum - 1
            with acc.no_sync(self.wrapped) if not last else nullcontext():
                with acc.autocast():
                    out = self.wrapped(batch)
                loss = out["loss"]
                finite = finite and bool(torch.isfinite(loss.detach()).all())
                acc.backward(loss / c.grad_accum)
            for k, v in out.items():
                if isinstance(v, torch.Tensor) and v.numel() == 1:
                    totals[k] = totals.get(k, 0.0) + float(v.detach()) / c.grad_accum
        grad_norm = None
        if c.clip_grad_norm and finite:
            grad_norm = acc.clip_grad_norm_(self.wrapped.parameters(), c.clip_grad_norm)
            if grad_norm is not None and acc.scaler is None:
                finite = finite and bool(torch.isfinite(grad_norm))
        flag = torch.tensor([float(finite)], device=acc.device)
        finite = bool(acc.gather(flag).min().item() > 0)
        if finite:
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update(self.model)
                s.ema_updates = self.ema.num_updates
        else:
            self._handle_non_finite(totals)
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if grad_norm is not None:
            totals["grad_norm"] = float(grad_norm)
        return totals

    def _handle_non_finite(self, totals: Mapping[str, float]) -> None:
        c, s = self.config, self.state
        step = s.global_step + 1
        where = f"step {step} (epoch {s.epoch}, batch {s.batch_in_epoch} of the epoch)"
        loss = totals.get("loss", math.nan)
        if c.nan_policy == "raise":
            raise NonFiniteLossError(
                f"non-finite loss or gradient (loss={loss}) at {where}; lower train.lr, set "
                f"train.clip_grad_norm, check the data, or set train.nan_policy=skip"
            )
        s.nan_skips += 1
        log.warning("skipped non-finite batch at %s (%d/%d)", where, s.nan_skips, c.max_nan_skips)
        if s.nan_skips > c.max_nan_skips:
            raise NonFiniteLossError(
                f"more than train.max_nan_skips={c.max_nan_skips} non-finite batches; the last "
                f"at {where} (loss={loss}); lower train.lr or check the data"
            )
