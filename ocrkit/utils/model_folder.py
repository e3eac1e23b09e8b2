"""Model folders: one set of formats, one writer, one reader and ``ocrkit.load``.

Every folder ocrkit writes declares its ``format`` in a JSON config file that is written last, so
a folder whose config file exists is complete:

| format | config file | what loads it |
| --- | --- | --- |
| ``ocrkit-recognizer`` | ``config.json`` | ``Recognizer.from_pretrained`` |
| ``ocrkit-pretrain`` | ``config.json`` | ``pretrain.encoders.load_encoder`` (the student encoder) |
| ``ocrkit-qmask`` | ``qmask_config.json`` | ``QMask.from_pretrained`` |
| ``ocrkit-onnx`` | ``onnx.json`` | ``OnnxRecognizer.from_pretrained`` |

Older folders still read: a ``config.json`` without ``format`` is a recognizer (folders written
before the key existed), and ``ocrkit.qmask`` is the old spelling of ``ocrkit-qmask``. Those
fallbacks live here only. This module is a leaf: the loaders register by import path
(``Registry.register_lazy``), so it imports no model family.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocrkit.registry import Registry
from ocrkit.utils.io import atomic_write_json, fsync_dir, fsync_tree, remove_stale

RECOGNIZER = "ocrkit-recognizer"
PRETRAIN = "ocrkit-pretrain"
QMASK = "ocrkit-qmask"
ONNX = "ocrkit-onnx"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
# Each format's config file (holds "format"; written last).
CONFIG_FILES = {
    RECOGNIZER: CONFIG_NAME,
    PRETRAIN: CONFIG_NAME,
    QMASK: "qmask_config.json",
    ONNX: "onnx.json",
}
# Where a folder's format is read: the first of these files it holds. An ONNX folder also keeps
# its recognizer's config.json, so the more specific files come first.
MARKERS = ("onnx.json", "qmask_config.json", CONFIG_NAME)
KINDS = {
    RECOGNIZER: "recognizer",
    PRETRAIN: "pretraining",
    QMASK: "Q-Mask",
    ONNX: "ONNX recognizer",
}
ALIASES = {"ocrkit.qmask": QMASK}  # spellings written by older ocrkit versions

# format -> callable(path, **kwargs) returning the model; registered by import path.
LOADERS: Registry[Any] = Registry("model folder format")
LOADERS.register_lazy(RECOGNIZER, "ocrkit.models.recognizer:Recognizer.from_pretrained")
LOADERS.register_lazy(PRETRAIN, "ocrkit.pretrain.encoders:load_encoder")
LOADERS.register_lazy(QMASK, "ocrkit.anchoring.model:QMask.from_pretrained")
LOADERS.register_lazy(ONNX, "ocrkit.export.onnx_runtime:OnnxRecognizer.from_pretrained")


class NotAModelFolder(FileNotFoundError, ValueError):
    """The path is missing, not a directory, or holds none of the config files."""


@dataclass(frozen=True)
class FolderConfig:
    """A folder's format (canonical spelling, ``None`` when it names none) and its config."""

    format: str | None
    config: dict[str, Any]
    file: Path


def format_of(config: Mapping[str, Any], file_name: str) -> str | None:
    """The canonical format of a config read from ``file_name``, with the old-folder fallbacks."""
    fmt = config.get("format")
    if fmt is None and file_name == CONFIG_NAME:
        return RECOGNIZER  # written before config.json named its format
    return ALIASES.get(fmt, fmt) if isinstance(fmt, str) else None


def read_config_file(file: str | Path) -> FolderConfig:
    """One config file of a folder (e.g. the recognizer ``config.json`` of an ONNX folder)."""
    file = Path(file)
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{file} is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{file} is not a model config (a JSON object)")
    return FolderConfig(format_of(config, file.name), config, file)


def read_config(path: str | Path, expect: str | None = None) -> FolderConfig:
    """The format and config of the model folder ``path`` (from the first of :data:`MARKERS`).

    With ``expect`` (a format), a folder of another format is a ValueError naming both.
    """
    path = Path(path)
    kind = f"{KINDS[expect]} folder" if expect else "model folder"
    kind = f"{'an' if kind[0] in 'AEIOUaeiou' else 'a'} {kind}"  # an ONNX recognizer folder
    if not path.is_dir():
        why = "not a directory" if path.exists() else "does not exist"
        raise NotAModelFolder(f"{path} is not {kind} ({why})")
    names = [CONFIG_FILES[expect]] if expect else list(MARKERS)
    file = next((path / n for n in names if (path / n).is_file()), None)
    if file is None:
        raise NotAModelFolder(f"{path} is not {kind} (no {' or '.join(names)})")
    found = read_config_file(file)
    if expect and found.format != expect:
        raise ValueError(f"{file} holds a {found.format!r} model, not a {KINDS[expect]}")
    return found


def load(path: str | Path, **kwargs: Any) -> Any:
    """Load any ocrkit model folder by its ``format`` (Hugging Face ``AutoModel`` style):
    a recognizer, a pretrained encoder, a Q-Mask model or an ``OnnxRecognizer``.

    ``kwargs`` go to that format's loader (e.g. ``device=`` for a recognizer, ``threads=`` for
    an ONNX folder).
    """
    found = read_config(path)
    if found.format not in LOADERS:
        known = ", ".join(LOADERS.list())
        raise ValueError(f"{path}: unknown model folder format {found.format!r} (known: {known})")
    return LOADERS.get(found.format)(path, **kwargs)


def write_folder(
    directory: str | Path,
    fmt: str,
    write: Callable[[Path], Mapping[str, Any]],
    stale: Iterable[str] = (),
) -> Path:
    """Write a model folder of format ``fmt``; returns ``directory``.

    ``write(tmp)`` writes every file but the config into an empty temporary folder and returns
    the config; the config file (with ``"format": fmt``) is written last. A new folder is then
    renamed into place whole. Into an existing folder (files of other writers, e.g.
    ``MODEL_CARD.md``, stay) the old config file is removed first, the new files are moved in,
    and the config comes last, so a reader never sees a config beside the wrong weights.
    ``stale``: names to remove from an existing folder when the new one has none of them. A
    ``write`` that raises leaves ``directory`` as it was.
    """
    directory = Path(directory)
    config_name = CONFIG_FILES[fmt]
    exists = directory.is_dir()
    if exists:  # staged inside: same filesystem even when the folder is a mount point
        remove_stale(directory, ".tmp-folder-*")
        tmp = directory / f".tmp-folder-{os.getpid()}"
    else:
        directory.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(directory.parent, f".tmp-{directory.name}-*")
        tmp = directory.parent / f".tmp-{directory.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        config = dict(write(tmp))
        config["format"] = fmt
        atomic_write_json(tmp / config_name, config)
        fsync_tree(tmp)
        if not exists:
            try:
                os.replace(tmp, directory)
            except OSError:
                if not directory.is_dir():
                    raise
                exists = True  # another writer created it meanwhile
        if exists:
            _move_into(tmp, directory, config_name, stale)
        fsync_dir(directory.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def _move_into(tmp: Path, directory: Path, config_name: str, stale: Iterable[str]) -> None:
    """Move ``tmp``'s entries over ``directory``'s: old config out first, new config last."""
    (directory / config_name).unlink(missing_ok=True)
    fsync_dir(directory)
    for name in stale:
        target = directory / name
        if not (tmp / name).exists() and target.is_file():
            target.unlink()
    for entry in sorted(tmp.iterdir(), key=lambda p: p.name == config_name):
        target = directory / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(entry, target)
    fsync_dir(directory)
