"""Training checkpoints: atomic directories holding everything needed to resume exactly.

Layout of ``OUTPUT/checkpoints/step-00001000/``::

    model.safetensors      raw (non-EMA) weights of the unwrapped model
    ema.safetensors        EMA weights (when EMA is on)
    optimizer.pt           optimizer state_dict (tensors and numbers; read with weights_only=True)
    scheduler.json         LambdaLR state (plain numbers)
    scaler.json            fp16 GradScaler state (when fp16)
    rng-rank<r>.pt         python / numpy / torch (/cuda) RNG states of process r
    trainer_state.json     step, epoch, batch position, best metric, ...; written last

A checkpoint is written into ``checkpoints/.tmp-step-...``, every file and the directory are
fsynced, and the directory is renamed into place, so a crash mid-save never leaves a half
checkpoint under a ``step-*`` name and never touches the previous one. Only the ``keep_last``
newest checkpoints are kept. Pickles are never loaded: ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_model, save_model
from torch import nn

from ocrkit.utils.io import fsync_dir, fsync_tree, pid_alive, remove_stale

CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "trainer_state.json"
_NAME = re.compile(r"^step-(\d+)$")


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints under ``output_dir/checkpoints``, oldest first."""
    root = Path(output_dir) / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in root.iterdir()
        if (m := _NAME.match(p.name)) and (p / STATE_FILE).is_file()
    ]
    return [p for _, p in sorted(found)]


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def resolve_resume(resume: str | Path | None, output_dir: str | Path) -> Path | None:
    """``None``/``"none"``: fresh; ``"auto"``: latest in ``output_dir`` (or fresh); else a path."""
    if resume is None or str(resume).lower() in {"none", "no", "false", ""}:
        return None
    if str(resume) == "auto":
        return latest_checkpoint(output_dir)
    path = Path(resume)
    if (path / CHECKPOINT_DIR).is_dir():  # an output dir: take its latest checkpoint
        latest = latest_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(f"--resume {path}: no complete checkpoint under it")
        return latest
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(
            f"--resume {path}: not a checkpoint (no {STATE_FILE}); pass a "
            f"{CHECKPOINT_DIR}/step-* folder, an output folder, or 'auto'"
        )
    return path


def write_dir_atomically(target: Path, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_dir)`` then fsync and rename ``tmp_dir`` to ``target`` (replacing it)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-{target.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        writer(tmp)
        fsync_tree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = target.parent / f".old-{target.name}-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(tmp, target)
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def prune(output_dir: str | Path, keep_last: int) -> None:
    """Delete all but the ``keep_last`` newest checkpoints and stale temporary folders."""
    root = Path(output_dir) / CHECKPOINT_DIR
    for path in list_checkpoints(output_dir)[:-keep_last] if keep_last > 0 else []:
        shutil.rmtree(path, ignore_errors=True)
    if root.is_dir():
        for path in [*root.glob(".tmp-*"), *root.glob(".rng-*")]:
            if not path.name.endswith(f"-{os.getpid()}"):
                shutil.rmtree(path, ignore_errors=True)


def clean_leftovers(output_dir: str | Path) -> None:
    """Remove what a killed run left in ``output_dir``: ``.tmp-best-<pid>``/``.tmp-final-<pid>``
    folders of an interrupted :func:`write_dir_atomically` and its ``.old-*`` copies (put back
    first when the kill fell between the two renames, so ``best/`` is never lost)."""
    root = Path(output_dir)
    if not root.is_dir():
        return
    for old in root.glob(".old-*-*"):
        name, pid = old.name[len(".old-") :].rsplit("-", 1)
        target = root / name
        if pid.isdigit() and not pid_alive(int(pid)) and not target.exists():
            os.replace(old, target)
    for pattern in (".tmp-*", ".old-*"):
        remove_stale(root, pattern)
        remove_stale(root / CHECKPOINT_DIR, pattern)


# --- pieces ------------------------------------------------------------------------------------


def save_weights(module: nn.Module, path: Path) -> None:
    save_model(module, str(path))  # handles tied/shared tensors


def load_weights(module: nn.Module, path: Path) -> None:
    missing, unexpected = load_model(module, str(path), strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{path} does not match the model (missing {sorted(missing)[:5]}, unexpected "
            f"{sorted(unexpected)[:5]}); resume with the recipe that wrote it"
        )


def save_torch(obj: Any, path: Path) -> None:
    torch.save(obj, path)


def load_torch(path: Path) -> Any:
    return torch.load(path, map_location="cpu", weights_only=True)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def rng_state() -> dict[str, Any]:
    """RNG states of python, numpy (global) and torch (CPU and CUDA) as tensors/numbers."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy_key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
        "numpy_pos": int(np_state["state"]["pos"]),
        "numpy_has_gauss": int(np_state["has_gauss"]),
        "numpy_gauss": float(np_state["gauss"]),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {
                "key": state["numpy_key"].numpy().astype(np.uint32),
                "pos": state["numpy_pos"],
            },
            "has_gauss": state["numpy_has_gauss"],
            "gauss": state["numpy_gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_model_folder(model: nn.Module, directory: Path) -> None:
    """``model.save_pretrained(directory)`` when defined, else ``model.safetensors``."""
    saver = getattr(model, "save_pretrained", None)
    if callable(saver):
        saver(directory)
    else:
        save_weights(model, directory / "model.safetensors")
