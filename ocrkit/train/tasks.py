"""The ``str`` task and the data helpers the tasks share; ``TASKS`` itself lives in
:mod:`ocrkit.train.task_registry` (re-exported here). A task turns a recipe into
:class:`TaskParts`.

The ``str`` task (supervised recognizer) reads these recipe sections::

    model: {...}                 # Recognizer.from_config
    init: {encoder: PATH}        # optional: Recognizer.load_encoder_weights; or model: DIR,
                                 # freeze_encoder: true | body, train_body_tail: N,
                                 # encoder_lr_scale: 0.1, cache_frozen: true or
                                 # {views: K, half: bool} (ocrkit.train.frozen_features)
    data:
      protocol: parseq36         # label filter/normalization for training and validation
      augment: abinet            # StrAugment preset, or null
      shrink_pad: null           # or 0.5 / {scale: 0.5, p: 1.0}: MNSP Fig. 4 training corpus
      train:                     # dataset specs (ocrkit.data.specs.parse_spec); a dict spec may add
        - ${OCRKIT_DATA}/str/iiit5k_train
        - {path: ..., holdout: 200, repeat: 2}   # 200 seeded samples -> validation; 2x oversampled
        - {path: ..., max_samples: 5000}         # a seeded subset of the (remaining) samples
        - {type: synth, num_samples: 20000, seed: 0}   # rendered once into a cache LMDB
      val: {name: spec, ...}     # optional extra validation sets (never test sets for selection)
      val_max_samples: 1000      # cap per validation set
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from torch import nn
from torch.utils.data import ConcatDataset, Dataset

from ocrkit.config import ConfigError
from ocrkit.data.sources import synth_lmdb  # noqa: F401  (moved there; old imports keep working)
from ocrkit.train.task_registry import TASKS, TaskParts
from ocrkit.utils.paths import cache_dir

log = logging.getLogger(__name__)


def _split(n: int, holdout: int, seed: int) -> tuple[list[int], list[int]]:
    order = np.random.default_rng(seed).permutation(n).tolist()
    return sorted(order[holdout:]), sorted(order[:holdout])


class _PerSampleSeed:
    """Calls ``augment(image, seed)`` with a seed drawn from the global numpy RNG, which the
    trainer seeds per sample (:class:`ocrkit.train.sampling.SeededDataset`): resumable order."""

    def __init__(self, augment: Callable[..., Any]) -> None:
        self.augment = augment

    def __call__(self, image: Any) -> Any:
        return self.augment(image, int(np.random.randint(0, 2**31 - 1)))

    def __repr__(self) -> str:
        return f"PerSampleSeed({self.augment!r})"


def build_str_data(config: Mapping[str, Any], model_transform: Any, seed: int, workers: int):
    """Train dataset (augmented, then the model's own input transform) and raw validation sets
    from ``config["data"]``. ``model_transform`` may also be an ``img_size`` (H, W)."""
    from ocrkit.data import StrTransform, SubsetStrDataset
    from ocrkit.data.specs import open_spec, parse_spec

    if isinstance(model_transform, (tuple, list)):
        model_transform = StrTransform(tuple(model_transform))

    data = config.get("data") or {}
    specs = data.get("train")
    if not specs:
        raise ConfigError("recipe key data.train: give at least one training dataset spec")
    protocol = data.get("protocol", "parseq36")
    steps: list[Any] = []
    if data.get("shrink_pad"):  # MNSP Fig. 4: train on the 0.5x shrunk, black-padded corpus
        from ocrkit.data.transforms import ShrinkPad

        opt = data["shrink_pad"]
        opt = opt if isinstance(opt, Mapping) else {"scale": opt}
        try:
            steps.append(ShrinkPad(**opt))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"recipe key data.shrink_pad: {exc}") from None
    if data.get("augment"):
        try:
            from ocrkit.data.augment import StrAugment
        except ImportError as exc:
            raise ConfigError(
                f"recipe key data.augment={data['augment']!r}: ocrkit.data.augment is not "
                f"available ({exc}); set data.augment=null"
            ) from None
        steps.append(_PerSampleSeed(StrAugment(preset=data["augment"])))
    steps.append(model_transform)
    from ocrkit.data import Compose

    transform = Compose(steps)
    parts: list[Dataset] = []
    val: dict[str, Dataset] = {}
    for i, spec in enumerate(specs if isinstance(specs, list) else [specs]):
        parsed = parse_spec(spec)
        name = parsed.label(i)
        train_set = open_spec(spec, protocol, transform=transform, workers=workers)
        holdout = int(parsed.holdout or 0)
        if holdout:
            if holdout >= len(train_set):
                raise ConfigError(
                    f"recipe key data.train.{i}.holdout: {holdout} >= {len(train_set)} samples"
                )
            keep, held = _split(len(train_set), holdout, seed + i)
            raw = open_spec(spec, protocol, workers=workers)
            val[f"{name}_holdout"] = SubsetStrDataset(raw, held)
            train_set = SubsetStrDataset(train_set, keep)
        cap = parsed.max_samples
        if cap and cap < len(train_set):
            order = np.random.default_rng(seed + 1000 + i).permutation(len(train_set))
            train_set = SubsetStrDataset(train_set, sorted(order[:cap].tolist()))
        repeat = parsed.repeat
        parts.extend([train_set] * repeat)
        log.info("train set %s: %d samples x %d", name, len(train_set), repeat)
    cap = data.get("val_max_samples")
    for name, spec in (data.get("val") or {}).items():
        val[name] = open_spec(spec, protocol, workers=workers)
    if cap:
        val = {k: v if len(v) <= cap else SubsetStrDataset(v, range(cap)) for k, v in val.items()}
    train = parts[0] if len(parts) == 1 else ConcatDataset(parts)
    return train, val


def make_eval_fn(val_sets: Mapping[str, Dataset], protocol: str, batch_size: int = 128):
    """``eval_fn(model) -> {"val/accuracy", "val/one_minus_ned", "val/<set>/accuracy"}``."""
    from ocrkit.eval import evaluate

    def eval_fn(model: nn.Module) -> dict[str, float]:
        report = evaluate(model, val_sets, protocol, batch_size=batch_size)  # type: ignore[arg-type]
        combined = report.combined
        metrics = {
            "val/accuracy": combined.accuracy,
            "val/one_minus_ned": combined.one_minus_ned,
            "val/samples": float(combined.samples),
        }
        for name, m in report.sets.items():
            metrics[f"val/{name}/accuracy"] = m.accuracy
        return metrics

    return eval_fn


def resolve_model_folder(spec: str) -> Path:
    """A recognizer folder, or ``ppocr:<wheel>`` (``ppocr:rapidocr``, ``ppocr:rapidocr-onnxruntime``):
    the PP-OCR recognizer of that installed wheel, converted once into the ocrkit cache."""
    if not str(spec).startswith("ppocr:"):
        return Path(spec)
    from importlib.metadata import version

    from ocrkit.models.convert_ppocr import WHEEL_MODELS, convert_ppocr, wheel_model_path

    package = str(spec)[len("ppocr:") :]
    if package not in WHEEL_MODELS:
        raise ConfigError(f"recipe key init.model: {spec!r}: choose ppocr:{'|'.join(WHEEL_MODELS)}")
    target = cache_dir() / "ppocr" / f"{package}-{version(package)}"
    if not (target / "model.safetensors").is_file():
        log.info("converting the %s recognizer into %s (first use)", package, target)
        convert_ppocr(wheel_model_path(package), target, source=f"the {package} wheel")
    return target


def init_model(model: Any, init: Mapping[str, Any]) -> None:
    """The recipe's ``init`` section: ``encoder: PATH`` (backbone weights), ``model: DIR``
    (backbone and decoder of a recognizer folder; a CTC head is remapped to the recipe's
    charset), ``freeze_encoder: true`` (train the decoder only) or ``body`` (PP-OCR encoders:
    the neck and decoder train; ``train_body_tail: N``: the body's last N blocks too),
    ``freeze_batchnorm: true`` (batch-norm statistics stay as loaded), ``encoder_lr_scale: s``;
    ``cache_frozen`` is read by :func:`str_task`."""
    unknown = set(init) - {
        "encoder",
        "model",
        "freeze_encoder",
        "train_body_tail",
        "freeze_batchnorm",
        "encoder_lr_scale",
        "cache_frozen",
    }
    if unknown:
        raise ConfigError(f"recipe key init: unknown keys {sorted(unknown)}")
    if init.get("encoder") and init.get("model"):
        raise ConfigError("recipe key init: give encoder or model, not both")
    if init.get("encoder"):
        result = model.load_encoder_weights(resolve_model_folder(init["encoder"]))
        log.info("initialized encoder from %s: %s tensors", init["encoder"], result["loaded"])
    if init.get("model"):
        try:
            report = model.load_model_weights(resolve_model_folder(init["model"]))
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(f"recipe key init.model: {exc}") from None
        log.info(
            "initialized from %s: %d characters kept, new %s",
            init["model"],
            report["kept"],
            report["new"],
        )
    freeze = init.get("freeze_encoder")
    tail = init.get("train_body_tail", 0)
    if not isinstance(tail, int) or tail < 0 or (tail and freeze != "body"):
        raise ConfigError(
            f"recipe key init.train_body_tail: a count of body blocks >= 0 that train with "
            f"freeze_encoder: body (got {tail!r} with freeze_encoder: {freeze!r})"
        )
    if freeze:
        try:
            model.freeze_encoder("body" if freeze == "body" else "all", tail=tail)
        except ValueError as exc:
            raise ConfigError(f"recipe key init.freeze_encoder: {exc}") from None
    if init.get("cache_frozen") and not freeze:
        raise ConfigError("recipe key init.cache_frozen: needs init.freeze_encoder (true or body)")
    if init.get("freeze_batchnorm"):
        model.freeze_batchnorm()
    if init.get("encoder_lr_scale") is not None:
        model.encoder_lr_scale = float(init["encoder_lr_scale"])


def str_task(config: Mapping[str, Any]) -> TaskParts:
    """Supervised scene text recognition: ``Recognizer`` + labelled word images."""
    from ocrkit.data import collate_samples
    from ocrkit.models import Recognizer

    if "model" not in config:
        raise ConfigError(
            "recipe key model: missing; the str task builds Recognizer.from_config(model)"
        )
    try:
        model = Recognizer.from_config(config["model"])
    except ConfigError:
        raise
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"recipe key model: {exc}") from None
    init_model(model, config.get("init") or {})
    cache = cache_options(config)  # a recipe mistake fails before any data is read
    train_cfg = config.get("train") or {}
    seed = int(train_cfg.get("seed", 0))
    train, val = build_str_data(config, model.transform, seed, int(train_cfg.get("num_workers", 0)))
    protocol = (config.get("data") or {}).get("protocol", "parseq36")
    eval_fn = make_eval_fn(val, protocol) if val else None
    collate = collate_samples
    if cache.views:
        from ocrkit.train.frozen_features import cache_frozen_features, collate_features

        train = cache_frozen_features(
            model, train, cache_dir(), views=cache.views, seed=seed, half=cache.half
        )
        collate = collate_features
    info = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_samples": len(train),  # type: ignore[arg-type]
        "val_sets": {k: len(v) for k, v in val.items()},  # type: ignore[arg-type]
    }
    return TaskParts(model, train, collate, eval_fn, info)


class CacheOptions(NamedTuple):
    """``init.cache_frozen`` read: ``views`` cached copies per crop (0: no cache), ``half``
    (float16)."""

    views: int
    half: bool = False


def cache_options(config: Mapping[str, Any]) -> CacheOptions:
    """The recipe's ``init.cache_frozen``: ``views`` 0 (no cache), 1 (``true`` or
    ``{views: 1}``: needs ``data.augment: null``) or K (``{views: K}``: K augmented copies,
    needs ``data.augment``); ``half: true`` in the mapping stores them in float16."""
    option = (config.get("init") or {}).get("cache_frozen")
    if not option:
        return CacheOptions(0)
    half = isinstance(option, Mapping) and bool(option.get("half"))
    augment = (config.get("data") or {}).get("augment")
    if isinstance(option, Mapping) and option.get("views") == 1:
        option = True if set(option) <= {"views", "half"} else option
    if option is True:
        if augment:
            raise ConfigError(
                "recipe key init.cache_frozen: set data.augment=null (augmented crops change "
                "every step, so one cached output per crop cannot hold them), or cache "
                "augmented copies with cache_frozen: {views: K}"
            )
        return CacheOptions(1, half)
    views = option.get("views") if isinstance(option, Mapping) else None
    keys = set(option if isinstance(option, Mapping) else ())
    if keys - {"views", "half"} or not isinstance(views, int):
        raise ConfigError(
            f"recipe key init.cache_frozen: true or {{views: K, half: bool}}, got {option!r}"
        )
    if views < 2 or not augment:
        raise ConfigError(
            "recipe key init.cache_frozen.views: K >= 2 augmented copies need data.augment "
            f"(got views={views}, augment={augment!r})"
        )
    return CacheOptions(views, half)


def build_task(config: Mapping[str, Any]) -> TaskParts:
    """``TASKS[config["task"]](config)``; the error lists the known tasks."""
    name = config.get("task")
    if not name:
        raise ConfigError(f"recipe key task: missing; one of {', '.join(TASKS.list())}")
    return TASKS.get(name)(config)
