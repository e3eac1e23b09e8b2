"""The trainer's checkpoints: save and restore its full state, and write model folders.

:class:`CheckpointMixin` holds the part of :class:`~ocrkit.train.trainer.Trainer` that writes
``OUTPUT/checkpoints/step-N`` (atomically; ``ocrkit`` or Accelerate's sharded format, see
:mod:`ocrkit.train.sharded`), resumes from one, and writes ``OUTPUT/best`` / ``OUTPUT/final``.
The file-level helpers it uses live in :mod:`ocrkit.train.checkpoint`.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors.torch import save_file

from ocrkit.train import checkpoint as ckpt
from ocrkit.train import sharded
from ocrkit.train.parts import TrainerState

if TYPE_CHECKING:
    from accelerate import Accelerator
    from torch import nn

    from ocrkit.train.ema import ModelEma
    from ocrkit.train.settings import TrainConfig

log = logging.getLogger("ocrkit.train.trainer")  # the trainer's log lines, as before the split


class CheckpointMixin:
    """Checkpoint save/restore for the trainer (set up by ``Trainer._setup``)."""

    acc: Accelerator
    model: nn.Module
    wrapped: nn.Module
    optimizer: Any
    scheduler: Any
    ema: ModelEma | None
    config: TrainConfig
    state: TrainerState
    output_dir: Path
    format: str
    fsdp: bool

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoints/step-N`` atomically (all processes call this)."""
        acc, name = self.acc, ckpt.checkpoint_name(self.state.global_step)
        root = self.output_dir / ckpt.CHECKPOINT_DIR
        if self.format == "accelerate":
            return sharded.save_state_checkpoint(
                acc, root, name, self._write_main_files, self.config.keep_last
            )
        rng_dir = root / f".rng-{name}"
        if acc.is_main_process:
            rng_dir.mkdir(parents=True, exist_ok=True)
        acc.wait_for_everyone()
        ckpt.save_torch(ckpt.rng_state(), rng_dir / f"rng-rank{acc.process_index}.pt")
        acc.wait_for_everyone()
        path = None
        if acc.is_main_process:

            def write(tmp: Path) -> None:
                for f in rng_dir.iterdir():
                    f.replace(tmp / f.name)
                ckpt.save_weights(self.model, tmp / "model.safetensors")
                ckpt.save_torch(self.optimizer.state_dict(), tmp / "optimizer.pt")
                if acc.scaler is not None:
                    ckpt.write_json(tmp / "scaler.json", acc.scaler.state_dict())
                self._write_main_files(tmp)

            try:
                path = ckpt.write_dir_atomically(root / name, write)
            finally:
                shutil.rmtree(rng_dir, ignore_errors=True)
            ckpt.prune(self.output_dir, self.config.keep_last)
            log.info("saved checkpoint %s", path)
        acc.wait_for_everyone()
        return path

    def _write_main_files(self, folder: Path) -> None:
        """EMA, scheduler and (last) ``trainer_state.json``: written by the main process."""
        if self.ema is not None:
            ckpt.save_weights(self.ema.module, folder / "ema.safetensors")
        ckpt.write_json(folder / "scheduler.json", self.scheduler.state_dict())
        ckpt.write_json(folder / ckpt.STATE_FILE, self._state_dict())

    def _state_dict(self) -> dict[str, Any]:
        state = asdict(self.state)
        state["num_processes"] = self.acc.num_processes
        state["seed"] = self.config.seed
        state[sharded.FORMAT_KEY] = self.format
        return state

    def load_checkpoint(self, path: Path) -> None:
        data = ckpt.read_json(path / ckpt.STATE_FILE)
        if data.get("num_processes", 1) != self.acc.num_processes:
            raise ValueError(
                f"{path} was written by {data['num_processes']} processes, this run has "
                f"{self.acc.num_processes}; resume with the same number for an exact resume"
            )
        written = data.get(sharded.FORMAT_KEY, "ocrkit")
        if written != self.format:
            raise ValueError(
                f"{path} is a {written!r} checkpoint and this run uses {self.format!r} "
                f"(train.checkpoint_format, FSDP or not); resume under the setup that wrote it"
            )
        if written == "accelerate":
            self.acc.load_state(str(path))  # model, optimizer (and shards), grad scaler
        else:
            ckpt.load_weights(self.model, path / "model.safetensors")
            self.optimizer.load_state_dict(ckpt.load_torch(path / "optimizer.pt"))
            if self.acc.scaler is not None and (path / "scaler.json").is_file():
                self.acc.scaler.load_state_dict(ckpt.read_json(path / "scaler.json"))
        if self.ema is not None:
            if not (path / "ema.safetensors").is_file():
                raise ValueError(f"{path} has no EMA weights but train.ema_decay is set")
            ckpt.load_weights(self.ema.module, path / "ema.safetensors")
            self.ema.num_updates = data["ema_updates"]
        self.scheduler.load_state_dict(ckpt.read_json(path / "scheduler.json"))
        rng_file = path / f"rng-rank{self.acc.process_index}.pt"
        ckpt.set_rng_state(ckpt.load_torch(rng_file))
        keys = TrainerState.__dataclass_fields__
        self.state = TrainerState(**{k: v for k, v in data.items() if k in keys})
        log.info("resumed from %s (step %d)", path, self.state.global_step)

    def _save_model(self, name: str, metrics: Mapping[str, float] | None = None) -> Path | None:
        # FSDP: the unwrapped model holds shards; gather the full weights (every process) and
        # write them as model.safetensors (save_pretrained would save rank 0's shard).
        full = sharded.full_state_dict(self.acc, self.wrapped) if self.fsdp else None
        if not self.acc.is_main_process:
            return None
        model = self.ema.module if self.ema is not None else self.model

        def write(tmp: Path) -> None:
            if full is not None:
                save_file(full, str(tmp / "model.safetensors"), metadata={"format": "pt"})
            else:
                ckpt.save_model_folder(model, tmp)
            ckpt.write_json(
                tmp / ckpt.STATE_FILE, {**self._state_dict(), "metrics": dict(metrics or {})}
            )

        return ckpt.write_dir_atomically(self.output_dir / name, write)
