"""Training on a frozen encoder part without running it every step: its outputs, cached once.

With part of the encoder frozen (``init.freeze_encoder``), in eval mode and without data
augmentation, what the frozen part computes from a training crop never changes, so computing it
at every step is wasted work. On a CPU that is most of the work: the PP-OCRv6 small body costs
~20 ms per 48x320 crop, its neck and a CTC head well under 1 ms. :func:`cache_frozen_features`
runs the frozen part once over the training set and returns a dataset of its outputs, which the
recognizer's ``training_step`` turns into the same loss as from the images
(:meth:`~ocrkit.models.recognizer.Recognizer.memory_from_frozen`). The outputs are stored in
``$OCRKIT_CACHE/frozen/<key>.safetensors`` (written atomically), keyed by the frozen weights,
the input transform and the samples' keys, so a second run over the same data reuses them.

With data augmentation the outputs change with every draw, so instead of one output per crop the
cache holds ``views`` augmented copies of each (``init.cache_frozen: {views: K}``): view ``v`` of
a part is drawn with the numpy global RNG seeded from ``(seed, v)``, so the copies are
reproducible and keyed like the rest. An epoch then visits every view of every crop once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

log = logging.getLogger(__name__)


class FrozenFeatureDataset(Dataset):
    """``{"features": Tensor, "label": str}`` items; ``index`` maps positions to stored rows
    (a repeated training set points at the same rows again instead of storing them twice)."""

    def __init__(self, features: torch.Tensor, labels: Sequence[str], index: Sequence[int]):
        self.features = features
        self.labels = list(labels)
        self.index = list(index)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = self.index[i]
        return {"features": self.features[row], "label": self.labels[row]}


def collate_features(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack cached features: ``{"features": [B, ...], "labels": list[str]}``."""
    return {
        "features": torch.stack([item["features"] for item in batch]),
        "labels": [item["label"] for item in batch],
    }


def _parts(dataset: Dataset) -> list[Dataset]:
    """The datasets a (possibly nested) ``ConcatDataset`` is made of, in order."""
    if isinstance(dataset, ConcatDataset):
        return [p for d in dataset.datasets for p in _parts(d)]
    return [dataset]


def _cache_key(
    model: Any, samples: list[tuple[str, str]], view: str = "", half: bool = False
) -> str:
    digest = hashlib.sha256()
    digest.update(repr(model.transform).encode())
    digest.update(view.encode())
    if half:  # (full-precision keys stay as they were)
        digest.update(b"float16")
    for name, tensor in sorted(model.frozen_cache_module().state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    for key, label in samples:
        digest.update(f"{key}\t{label}\n".encode())
    return digest.hexdigest()[:24]


def _sample_keys(part: Dataset) -> list[tuple[str, str]] | None:
    """(source/key, label) of every sample without decoding images, when the dataset can say
    (``StrDataset`` and its subsets can)."""
    keys, labels = getattr(part, "keys", None), getattr(part, "labels", None)
    if not isinstance(keys, list) or not isinstance(labels, list):
        return None
    source = str(getattr(part, "name", ""))
    return [(f"{source}/{k}", str(label)) for k, label in zip(keys, labels)]


@torch.inference_mode()
def _compute(
    model: Any, part: Dataset, batch_size: int, half: bool = False, desc: str = "frozen features"
) -> tuple[torch.Tensor, list[str], int]:
    from ocrkit.utils.progress import progress

    rows: list[torch.Tensor] = []
    labels: list[str] = []
    skipped = 0
    pending: list[Any] = []

    def flush() -> None:
        images = torch.stack([s.image for s in pending]).to(model.device)
        features = model.frozen_features(images)
        rows.append((features.half() if half else features.float()).cpu())
        labels.extend(s.label for s in pending)
        pending.clear()

    for i in progress(range(len(part)), desc=desc, unit="img"):
        sample = part[i]
        if sample is None:
            skipped += 1
            continue
        pending.append(sample)
        if len(pending) == batch_size:
            flush()
    if pending:
        flush()
    return (torch.cat(rows) if rows else torch.empty(0)), labels, skipped


def cache_frozen_features(
    model: Any,
    dataset: Dataset,
    cache_dir: str | Path,
    batch_size: int = 64,
    views: int = 1,
    seed: int = 0,
    half: bool = False,
) -> FrozenFeatureDataset:
    """The frozen part's outputs for every sample of ``dataset`` (samples whose ``image`` is
    the model's input tensor), computed once per distinct part of a ``ConcatDataset``.

    ``views > 1`` stores that many copies of each part, view ``v`` read with the global numpy
    RNG seeded from ``(seed, v)`` (the draws of a randomly augmenting dataset transform).
    ``half`` stores float16 (half the memory of large maps, e.g. a body cached before its
    last blocks; ``Recognizer.memory_from_frozen`` reads them back as float32).
    Unreadable samples (``None``) are left out and counted in the log, as the data loader
    skips them. The model must have a frozen part (:meth:`Recognizer.freeze_encoder`).
    """
    if views < 1:
        raise ValueError(f"views must be >= 1, got {views}")

    was_training = model.training
    model.eval()
    unique: dict[int, tuple[int, int]] = {}  # id(part) -> (first row, rows)
    stored: list[torch.Tensor] = []
    labels: list[str] = []
    index: list[int] = []
    try:
        parts = _parts(dataset)
        for number, part in enumerate(parts, 1):
            if id(part) not in unique:
                first = len(labels)
                for view in range(views):
                    tag = _view_tag(views, seed, view, part)
                    desc = f"frozen features, part {number}/{len(parts)}"
                    desc += f" {getattr(part, 'name', '')}".rstrip()
                    desc += f", view {view + 1}/{views}" if views > 1 else ""
                    features, part_labels, skipped = _load_or_compute(
                        model, part, Path(cache_dir), batch_size, tag, half, desc
                    )
                    stored.append(features)
                    labels.extend(part_labels)
                    if skipped and view == 0:
                        log.warning("frozen features: %d unreadable samples left out", skipped)
                unique[id(part)] = (first, len(labels) - first)
            first, count = unique[id(part)]
            index.extend(range(first, first + count))
    finally:
        model.train(was_training)
    features = torch.cat([f for f in stored if f.numel()]) if labels else torch.empty(0)
    return FrozenFeatureDataset(features, labels, index)


def _view_tag(views: int, seed: int, view: int, part: Dataset) -> str:
    """What makes view ``view`` of ``part`` differ from the others: empty for a single view (the
    cache keys of un-augmented runs stay as they were); else the seed, the view and the part's
    own transform (the augmentation policy)."""
    if views == 1:
        return ""
    inner = part
    while getattr(inner, "transform", None) is None and hasattr(inner, "dataset"):
        inner = inner.dataset  # a subset: the transform is its base dataset's
    return f"views={views};seed={seed};view={view};transform={getattr(inner, 'transform', None)!r}"


def _load_or_compute(
    model,
    part,
    cache_dir: Path,
    batch_size: int,
    view: str = "",
    half: bool = False,
    desc: str = "frozen features",
):
    from safetensors.torch import load_file, save_file

    keys = _sample_keys(part)
    path = None
    if keys is not None:
        path = cache_dir / "frozen" / f"{_cache_key(model, keys, view, half)}.safetensors"
        if path.is_file():
            meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            log.info("frozen features: reusing %s (%d samples)", path, len(meta["labels"]))
            return load_file(str(path))["features"], meta["labels"], int(meta["skipped"])
    state = np.random.get_state()  # a view's draws must not move the trainer's RNG stream:
    try:  # a run that reuses the cache and one that computes it must train alike
        if view:
            np.random.seed(int.from_bytes(hashlib.sha256(view.encode()).digest()[:4], "little"))
        features, labels, skipped = _compute(model, part, batch_size, half, desc)
    finally:
        np.random.set_state(state)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        save_file({"features": features.contiguous()}, str(tmp))
        meta_tmp = tmp.with_suffix(".json")
        meta_tmp.write_text(json.dumps({"labels": labels, "skipped": skipped}), encoding="utf-8")
        os.replace(meta_tmp, path.with_suffix(".json"))  # metadata first: the weights mark done
        os.replace(tmp, path)
    return features, labels, skipped
