"""Which checkpoint format a run can use, and Accelerate-state checkpoints (FSDP).

Two formats (``train.checkpoint_format``):

* ``ocrkit`` (DDP and one process): the main process writes the unwrapped model, EMA and the
  optimizer as :mod:`ocrkit.train.checkpoint` describes. Correct only when every process holds
  the same full weights and optimizer state.
* ``accelerate`` (chosen by ``auto`` under FSDP): every process calls
  ``accelerator.save_state`` into one shared temporary folder (FSDP writes its shards: with
  ``SHARDED_STATE_DICT`` a ``torch.distributed.checkpoint`` folder per model and optimizer, with
  ``FULL_STATE_DICT`` full files from rank 0), then ocrkit adds ``scheduler.json``, its own
  ``rng-rank<r>.pt`` (Accelerate's pickled ``random_states_<r>.pkl`` is deleted: nothing is
  unpickled) and ``trainer_state.json`` with the data position, and the main process renames the
  folder into place. Resume runs ``accelerator.load_state`` then restores the rest.

Combinations that would save or evaluate wrongly raise :class:`UnsupportedSetup` at start-up.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from ocrkit.train import checkpoint as ckpt
from ocrkit.utils.io import fsync_dir

FORMATS = ("auto", "ocrkit", "accelerate")
FORMAT_KEY = "checkpoint_format"
# Accelerate's data parallel types (replicated weights and optimizer): both formats are right.
_REPLICATED = {"NO", "MULTI_CPU", "MULTI_GPU", "MULTI_NPU", "MULTI_XPU", "MULTI_MLU", "MULTI_MUSA"}
_REPLICATED |= {"MULTI_SDAA", "MULTI_HPU", "MULTI_NEURON"}


class UnsupportedSetup(ValueError):
    """A distributed setup and recipe that ocrkit cannot train or save correctly."""


def distributed_name(accelerator: Any) -> str:
    return str(getattr(accelerator.distributed_type, "name", accelerator.distributed_type))


def resolve_format(
    accelerator: Any, requested: str, ema: bool, eval_every: int, has_eval: bool
) -> str:
    """The checkpoint format of this run; raises :class:`UnsupportedSetup` for what would go
    wrong (EMA or evaluation of an FSDP-sharded model, the ocrkit format under FSDP, DeepSpeed,
    Megatron-LM, XLA)."""
    kind = distributed_name(accelerator)
    if kind in _REPLICATED:
        return "ocrkit" if requested == "auto" else requested
    if kind != "FSDP":
        raise UnsupportedSetup(
            f"Accelerate distributed type {kind} is not supported by the ocrkit trainer (its "
            f"checkpoints and EMA assume replicated or FSDP-sharded weights); use DDP "
            f"(accelerate launch --multi_gpu) or FSDP (recipes/accelerate/fsdp_qmask.yaml)"
        )
    if requested == "ocrkit":
        raise UnsupportedSetup(
            "train.checkpoint_format=ocrkit under FSDP would save rank 0's shard as the model; "
            "use auto or accelerate (accelerator.save_state)"
        )
    if ema:
        raise UnsupportedSetup(
            "train.ema_decay under FSDP is not supported: the EMA shadow is a full unsharded "
            "copy averaged from the local shard; set train.ema_decay=null"
        )
    if has_eval and eval_every:
        raise UnsupportedSetup(
            "evaluation during FSDP training is not supported (the eval callback runs the "
            "unwrapped, sharded model on rank 0); set train.eval_every=0 and evaluate "
            "OUTPUT/final afterwards"
        )
    return "accelerate"


def save_state_checkpoint(
    accelerator: Any, root: Path, name: str, write_main: Callable[[Path], None], keep_last: int
) -> Path | None:
    """Write ``root/name`` from every process through ``accelerator.save_state``; then
    ``write_main(folder)`` on the main process adds ocrkit's files (``trainer_state.json``
    last). Returns the folder on the main process, ``None`` elsewhere."""
    from accelerate.utils import broadcast_object_list

    acc = accelerator
    pid = broadcast_object_list([os.getpid()])[0]  # the main process names the shared folder
    tmp = root / f".tmp-{name}-{pid}"
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    acc.wait_for_everyone()
    rng = ckpt.rng_state()  # before save_state, which must not draw but might
    acc.save_state(str(tmp), safe_serialization=True)
    (tmp / f"random_states_{acc.process_index}.pkl").unlink(missing_ok=True)
    ckpt.save_torch(rng, tmp / f"rng-rank{acc.process_index}.pt")
    acc.wait_for_everyone()
    path = None
    if acc.is_main_process:
        write_main(tmp)
        ckpt.fsync_tree(tmp)
        path = root / name
        if path.exists():  # the same step again (a resumed run): replace it
            shutil.rmtree(path)
        os.replace(tmp, path)
        fsync_dir(root)
        ckpt.prune(root.parent, keep_last)
    acc.wait_for_everyone()
    return path


def full_state_dict(accelerator: Any, wrapped: nn.Module) -> dict[str, Any]:
    """The full weights of the model inside ``wrapped`` (a collective under FSDP: every process
    calls it); on the main process a CPU dict keyed like the unwrapped model's ``state_dict``."""
    state = accelerator.get_state_dict(wrapped)
    prefix = "model."  # Trainer wraps the model in StepModule
    return {
        k[len(prefix) :] if k.startswith(prefix) else k: v.detach().cpu().contiguous().clone()
        for k, v in (state or {}).items()
    }
