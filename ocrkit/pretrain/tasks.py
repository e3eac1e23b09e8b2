"""``TASKS`` entries ``mim`` and ``mnsp``: self-supervised pretraining through ``ocrkit train``.

Recipe sections read here::

    task: mnsp                      # or mim
    model: {...}                    # MNSPConfig / MIMConfig fields (ocrkit.pretrain.configs)
    data:
      train:                        # any ocrkit dataset spec, read WITHOUT labels:
        - {type: synth, num_samples: 20000, seed: 0}          # synthetic renderer (cached LMDB)
        - {path: ${OCRKIT_DATA}/ic15_train/annotations.jsonl, repeat: 2}   # scene crops
        - /data/union14m_u/lmdb                               # LMDB (labels ignored), folders
        - hf:user/dataset:train                               # Hugging Face datasets

The model decides which views each sample becomes (:meth:`PretrainModel.view_transform`); the
output folder's ``final/`` (``best/`` never: there is no validation metric) is an encoder folder
that ``init: {encoder: ...}`` of the ``str`` task and ``model.teacher`` of ``mnsp`` accept.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from torch.utils.data import ConcatDataset, Dataset

from ocrkit.config import ConfigError
from ocrkit.pretrain.mim import MaskedImageModel
from ocrkit.pretrain.mnsp import MNSP
from ocrkit.pretrain.views import collate_views
from ocrkit.train.task_registry import TaskParts

log = logging.getLogger(__name__)
TASK_KEYS = ("name", "repeat")  # what a pretraining task reads from a dataset spec


def open_unlabeled(spec: Any, transform: Any, workers: int = 0) -> Dataset:
    """One dataset spec (:func:`ocrkit.data.specs.parse_spec`) opened with ``unlabeled=True``."""
    from ocrkit.data.specs import open_spec

    return open_spec(
        spec, unlabeled=True, transform=transform, workers=workers, task_keys=TASK_KEYS
    )


def build_unlabeled(config: Mapping[str, Any], transform: Any, workers: int = 0) -> Dataset:
    """The concatenation of ``data.train`` (each spec ``repeat`` times), unlabeled."""
    from ocrkit.data.specs import parse_spec

    specs = (config.get("data") or {}).get("train")
    if not specs:
        raise ConfigError("recipe key data.train: give at least one (unlabeled) dataset spec")
    parts: list[Dataset] = []
    for spec in specs if isinstance(specs, list) else [specs]:
        dataset = open_unlabeled(spec, transform, workers)
        repeat = parse_spec(spec, task_keys=TASK_KEYS).repeat
        parts.extend([dataset] * repeat)
        log.info(
            "unlabeled set %s: %d images x %d", getattr(dataset, "name", spec), len(dataset), repeat
        )
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


def pretrain_task(model_cls: type, config: Mapping[str, Any]) -> TaskParts:
    """Model from ``config["model"]``, unlabeled views from ``config["data"]``."""
    try:
        model = model_cls.from_config(config.get("model") or {})
    except ValueError as exc:
        raise ConfigError(f"recipe key model: {exc}") from None
    workers = int((config.get("train") or {}).get("num_workers", 0))
    transform = model.view_transform()
    train = build_unlabeled(config, transform, workers)
    info = {
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "teacher": model.config.get("teacher") if model.teacher is not None else None,
        "views": repr(transform),
        "train_samples": len(train),  # type: ignore[arg-type]
    }
    return TaskParts(model, train, collate_views, None, info)


def mim_task(config: Mapping[str, Any]) -> TaskParts:
    """MAE-style masked image modeling (MIM baseline / MNSP teacher) on unlabeled images."""
    return pretrain_task(MaskedImageModel, config)


def mnsp_task(config: Mapping[str, Any]) -> TaskParts:
    """Masked Next-Scale Prediction on unlabeled images (needs a teacher for feature targets)."""
    return pretrain_task(MNSP, config)
