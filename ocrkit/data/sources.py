"""Dataset sources: the ``DATASETS`` registry and :func:`open_dataset`, which reads a spec.

A spec is one of

* a path, recognized by its contents (the ``auto`` source): a folder with ``data.mdb``
  (``lmdb``), with ``labels.tsv`` (``folder``), with ``state.json``/``dataset_dict.json`` or
  ``metadata.jsonl`` (``hf``), with ``annotations.jsonl`` (``scene``); a ``.jsonl`` file
  (``scene``); a ``.txt`` or ``.tsv`` list (``paddle``); an ``.arrow``/``.parquet`` file (``hf``);
* ``hf:NAME_OR_PATH[:split]`` (also through ``auto``);
* a dict ``{"type": "lmdb", "path": ..., **options}``: ``type`` names the ``DATASETS`` entry
  (``{"type": "synth", "num_samples": N, "seed": S}`` has no path; ``{"type": "auto", "path":
  ...}`` is a path);
* a list of these, read as one :class:`~ocrkit.data.base.ConcatStrDataset`.

Recipes give specs with task-level keys too (``repeat``, ``holdout``, ...): those are read by
:func:`ocrkit.data.specs.parse_spec`, the resolver every training task calls.

Each factory imports its module on first use, so ``datasets`` loads only for ``hf`` specs.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ocrkit.data.base import ConcatStrDataset, StrDataset, Transform
from ocrkit.registry import Registry
from ocrkit.text.protocols import LabelProtocol

log = logging.getLogger(__name__)
DATASETS: Registry[StrDataset] = Registry("dataset source")

Spec = str | Path | Mapping[str, Any] | Sequence["Spec"]


@DATASETS.register("lmdb")
def lmdb_source(path: str | Path, **kwargs: Any) -> StrDataset:
    """STR-layout LMDB folder (``num-samples``, ``image-%09d``, ``label-%09d``)."""
    from ocrkit.data.lmdb import LmdbDataset

    return LmdbDataset(path, **kwargs)


@DATASETS.register("folder")
def folder_source(path: str | Path, labels_file: str = "labels.tsv", **kwargs: Any) -> StrDataset:
    """Image folder with ``labels.tsv`` (``images/1.jpg<TAB>label``)."""
    from ocrkit.data.folder import folder_dataset

    return folder_dataset(path, labels_file=labels_file, **kwargs)


@DATASETS.register("paddle")
def paddle_source(path: str | Path, root: str | Path | None = None, **kwargs: Any) -> StrDataset:
    """PaddleOCR list file (``path<TAB>label``); ``root`` defaults to the list's folder."""
    from ocrkit.data.folder import paddle_dataset

    return paddle_dataset(path, root=root, **kwargs)


@DATASETS.register("scene")
def scene_source(path: str | Path, root: str | Path | None = None, **kwargs: Any) -> StrDataset:
    """Rectified word crops from a scene ``annotations.jsonl`` (or a folder holding one)."""
    from ocrkit.data.scene import SceneCropDataset

    path = Path(path)
    if path.is_dir():
        path = path / "annotations.jsonl"
    return SceneCropDataset(path, root=root, **kwargs)


@DATASETS.register("funsd")
def funsd_source(path: str | Path, **kwargs: Any) -> StrDataset:
    """Word crops of a FUNSD split folder (``annotations/*.json`` + ``images/*.png``)."""
    from ocrkit.data.funsd import FunsdWordDataset

    return FunsdWordDataset(path, **kwargs)


@DATASETS.register("hf")
def hf_source(
    path: str | Path, split: str | None = None, streaming: bool = False, **kwargs: Any
) -> Any:
    """Hugging Face dataset: saved folder, ``imagefolder`` folder, Arrow/Parquet file, hub name.

    ``streaming=True`` returns an :class:`~ocrkit.data.hf.HFStreamingDataset` (iterable).
    """
    from ocrkit.data.hf import HFDataset, HFStreamingDataset

    cls = HFStreamingDataset if streaming else HFDataset
    return cls(path, split=split, **kwargs)


@DATASETS.register("synth")
def synth_source(
    num_samples: int,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    workers: int = 0,
    **kwargs: Any,
) -> StrDataset:
    """Synthetic words (:class:`~ocrkit.data.render.WordRenderer`), rendered once into a cached
    LMDB (:func:`synth_lmdb`) and read as ``lmdb``."""
    from ocrkit.data.lmdb import LmdbDataset

    return LmdbDataset(synth_lmdb(num_samples, seed, cache_dir, workers), **kwargs)


def synth_lmdb(
    num_samples: int, seed: int = 0, cache_dir: str | Path | None = None, workers: int = 0
) -> Path:
    """The LMDB of ``num_samples`` synthetic words (seed ``seed``), rendered on first use into
    ``cache_dir`` (default ``$OCRKIT_CACHE/synth``); when processes of one launch render it at
    once, the first to finish wins (the words are the same)."""
    import os
    import shutil

    from ocrkit.data.render import render_to_lmdb
    from ocrkit.utils.paths import cache_dir as default_cache

    root = Path(cache_dir).expanduser() if cache_dir else default_cache() / "synth"
    target = root / f"words-seed{seed}-n{num_samples}"
    if (target / "data.mdb").is_file():
        return target
    tmp = root / f".tmp-{target.name}-{os.getpid()}"
    log.info(
        "rendering %d synthetic words into %s (first use; cached afterwards)", num_samples, target
    )
    render_to_lmdb(tmp, num_samples, seed=seed, num_workers=max(workers, 2), overwrite=True)
    try:
        os.replace(tmp, target)
    except OSError:
        if not (target / "data.mdb").is_file():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@DATASETS.register("auto")
def auto_source(path: str | Path, **kwargs: Any) -> Any:
    """A path whose source type is read from its contents (:func:`detect_type`), or
    ``hf:NAME_OR_PATH[:split]``."""
    text = str(path)
    if text.startswith("hf:"):
        name, split = parse_hf_spec(text)
        if split is not None:
            kwargs.setdefault("split", split)
        return DATASETS.build("hf", path=name, **kwargs)
    return DATASETS.build(detect_type(text), path=text, **kwargs)


def detect_type(path: str | Path) -> str:
    """The source type of a path, from what it contains; the error lists what was looked for."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"dataset path {path} does not exist")
    if path.is_dir():
        checks = [
            ("data.mdb", "lmdb"),
            ("labels.tsv", "folder"),
            ("state.json", "hf"),
            ("dataset_dict.json", "hf"),
            ("annotations.jsonl", "scene"),
            ("metadata.jsonl", "hf"),
            ("metadata.csv", "hf"),
        ]
        for name, kind in checks:
            if (path / name).is_file():
                return kind
        if (path / "annotations").is_dir() and any((path / "annotations").glob("*.json")):
            return "funsd"
        raise ValueError(
            f"cannot tell what kind of dataset {path} is: expected data.mdb (LMDB), labels.tsv "
            "(image folder), annotations.jsonl (scene crops), annotations/*.json (FUNSD words), "
            "state.json/dataset_dict.json "
            "(HF save_to_disk) or metadata.jsonl (HF imagefolder). Name the type explicitly "
            'with a dict spec, e.g. {"type": "paddle", "path": ..., "root": ...}'
        )
    suffixes = {".mdb": "lmdb", ".jsonl": "scene", ".txt": "paddle", ".tsv": "paddle"}
    suffixes |= {".arrow": "hf", ".parquet": "hf"}
    if path.suffix in suffixes:
        return suffixes[path.suffix]
    raise ValueError(
        f"cannot tell what kind of dataset file {path} is (by suffix: .jsonl scene annotations, "
        ".txt/.tsv PaddleOCR list, .arrow/.parquet HF data, data.mdb LMDB)"
    )


def parse_hf_spec(spec: str) -> tuple[str, str | None]:
    """``hf:NAME_OR_PATH[:split]`` -> (name or path, split)."""
    body = spec[len("hf:") :]
    if not body:
        raise ValueError("empty 'hf:' spec; write hf:NAME_OR_PATH[:split]")
    name, sep, split = body.rpartition(":")
    if sep and name and "/" not in split and not Path(body).exists():
        return name, split
    return body, None


def open_dataset(
    spec: Spec,
    protocol: str | LabelProtocol | None = None,
    unlabeled: bool = False,
    transform: Transform | None = None,
    **options: Any,
) -> StrDataset | ConcatStrDataset:
    """Open a dataset from a spec (see the module docstring); a list gives a concatenation.

    ``protocol`` filters and normalizes labels (e.g. ``"parseq36"``); ``unlabeled=True`` keeps
    every image with label ``None``; ``options`` go to the source (e.g. ``root``, ``split``).
    """
    common = dict(protocol=protocol, unlabeled=unlabeled, transform=transform)
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        if not spec:
            raise ValueError("empty list of dataset specs")
        parts = [open_dataset(s, **common, **options) for s in spec]
        return parts[0] if len(parts) == 1 else ConcatStrDataset(parts)
    if isinstance(spec, Mapping):
        entry = dict(spec)
        kind = entry.pop("type", None)
        if kind is None or (
            "path" not in entry and "path" in inspect.signature(DATASETS.get(kind)).parameters
        ):
            raise ValueError(f"a dict spec needs 'type' and 'path' keys, got {sorted(spec)}")
        return DATASETS.build(kind, **{**common, **options, **entry})
    return DATASETS.build("auto", path=str(spec), **common, **options)
