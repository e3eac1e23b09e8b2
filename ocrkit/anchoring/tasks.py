"""The ``qmask`` training task: a Q-Mask VLM on anchoring instances, through the generic trainer.

Recipe sections (see ``recipes/qmask/`` and docs/qmask.md)::

    model: {...}                   # QMaskConfig (base or tiny, finetune, freeze_vision, head, ...)
    init: {qmask: DIR}             # optional: start from a saved Q-Mask folder (stage 2); then
                                   # model: may only change the trainable policy
    data:
      train:                       # generate.build_instances specs; repeat: N oversamples
        - {type: icdar, path: ${OCRKIT_DATA}/ic15_train, tasks: [r2t, t2r]}
        - {type: funsd, path: ${OCRKIT_DATA}/funsd_test, tasks: [vqa], repeat: 2}
        - {type: synth, num_images: 2000}
      val: [{type: synth, num_images: 50, seed: 1}]
      val_max_samples: 64
      val_generate: 16             # validation samples answered by greedy generation
      spi: {gammas: [1.0, 0.5, 0.0], ...}   # Stochastic Prior Injection (spi.SPIConfig)
      font: null                   # de-stylized mask font (default: the paper's, see masks.py)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from torch import nn
from torch.utils.data import ConcatDataset

from ocrkit.config import ConfigError, to_dataclass
from ocrkit.train.task_registry import TaskParts

log = logging.getLogger(__name__)
DATA_KEYS = ("train", "val", "val_max_samples", "val_generate", "spi", "font", "cache_dir")


def _instances(
    specs: Any, seed: int, cache_dir: str | None, prior: str | None = None
) -> list[list[Any]]:
    """Instances of each spec; ``prior`` is the default prior mode (validation: ``none``, as
    it never injects a prior, so no OCR pass runs for it)."""
    from ocrkit.anchoring.generate import TASK_KEYS, build_instances
    from ocrkit.data.specs import parse_spec

    specs = specs if isinstance(specs, list) else [specs]
    out = []
    for i, spec in enumerate(specs):
        if prior and isinstance(spec, Mapping) and "prior" not in spec:
            spec = {**spec, "prior": prior}
        repeat = parse_spec(spec, "instances", TASK_KEYS).repeat
        try:
            items = build_instances(spec, seed=seed + i, cache_dir=cache_dir)
        except (ValueError, KeyError, FileNotFoundError) as exc:
            raise ConfigError(f"recipe key data.train.{i}: {exc}") from None
        log.info("anchoring set %d: %d instances x %d", i, len(items), repeat)
        out.extend([items] * repeat)
    return out


def make_eval_fn(val: Any, collate: Any, batch_size: int = 4, generate: int = 16):
    """``eval_fn(model)``: mean hard Dice and L_NTP (teacher forced) and the exact-match rate
    of greedily generated answers on the first ``generate`` samples."""
    import torch

    from ocrkit.anchoring.cqmd import mask_loss

    def eval_fn(model: nn.Module) -> dict[str, float]:
        from ocrkit.anchoring.inference import QMaskPredictor
        from ocrkit.tabench.normalize import normalize_r2t

        device = next(model.parameters()).device
        dice, dice_n, ntp, ntp_n = 0.0, 0, 0.0, 0
        samples = [s for s in (val[i] for i in range(len(val))) if s is not None]
        for start in range(0, len(samples), batch_size):
            batch = collate(samples[start : start + batch_size])
            batch = {
                k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()
            }
            out = model(batch)
            m = mask_loss(out["mask_logits"], batch["masks"])
            k = int(m["masked_images"])
            dice, dice_n = dice + float(m["dice"]) * k, dice_n + k
            ntp, ntp_n = ntp + float(out["loss_ntp"]), ntp_n + 1
        predictor = QMaskPredictor(model, device=str(device), max_new_tokens=64)
        right = 0
        chosen = samples[:generate]
        for s in chosen:
            answer = predictor.anchor(s["images"], s["question"]).answer
            right += normalize_r2t(answer) == normalize_r2t(s["answer"])
        return {
            "val/dice": dice / max(dice_n, 1),
            "val/loss_ntp": ntp / max(ntp_n, 1),
            "val/answer_exact": right / max(len(chosen), 1),
            "val/samples": float(len(samples)),
        }

    return eval_fn


def qmask_task(config: Mapping[str, Any]) -> TaskParts:
    """Q-Mask: L = lambda_txt L_NTP + lambda_seg (Dice + BCE) on anchoring instances."""
    from ocrkit.anchoring.data import AnchorDataset
    from ocrkit.anchoring.model import POLICY_KEYS, QMask
    from ocrkit.anchoring.spi import SPIConfig

    model_cfg = dict(config.get("model") or {})
    init = (config.get("init") or {}).get("qmask")
    if init:
        extra = set(model_cfg) - set(POLICY_KEYS)
        if extra:
            raise ConfigError(
                f"recipe keys model.{sorted(extra)[0]}: with init.qmask only the trainable policy "
                f"({', '.join(POLICY_KEYS)}) may be set"
            )
        model = QMask.from_pretrained(init, **model_cfg)
    else:
        if not model_cfg:
            raise ConfigError(
                "recipe key model: missing; give model.base (a Qwen VL folder) or model.tiny"
            )
        model = QMask.from_config(model_cfg)
    data = dict(config.get("data") or {})
    unknown = set(data) - set(DATA_KEYS)
    if unknown:
        raise ConfigError(
            f"recipe key data.{sorted(unknown)[0]}: unknown; known: {', '.join(DATA_KEYS)}"
        )
    if not data.get("train"):
        raise ConfigError("recipe key data.train: give at least one anchoring data spec")
    train_cfg = config.get("train") or {}
    seed = int(train_cfg.get("seed", 0))
    cache = data.get("cache_dir")
    spi = to_dataclass(SPIConfig, data.get("spi"), "data.spi")
    font = data.get("font")
    coords = model.box_adapter()
    parts = [
        AnchorDataset(items, spi, font, coords=coords)
        for items in _instances(data["train"], seed, cache)
    ]
    train = parts[0] if len(parts) == 1 else ConcatDataset(parts)
    eval_fn = None
    if data.get("val"):
        val_items = [
            x for items in _instances(data["val"], seed + 1000, cache, "none") for x in items
        ]
        val_items = val_items[: int(data.get("val_max_samples", 64))]
        val = AnchorDataset(val_items, None, font, coords=coords)
        eval_fn = make_eval_fn(val, model.collator(), generate=int(data.get("val_generate", 16)))
    counts = model.parameter_counts()
    info = {
        "parameters": counts,
        "train_instances": len(train),
        "finetune": model.config.finetune,
        "freeze_vision": model.config.freeze_vision,
    }
    return TaskParts(model, train, model.collator(), eval_fn, info)
