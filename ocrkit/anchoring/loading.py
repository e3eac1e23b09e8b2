"""Loading the pieces of a Q-Mask model: the VLM, its processor, the LoRA configuration.

``from_pretrained`` of a local folder or a hub id (Qwen2.5-VL-3B-Instruct, Qwen3-VL-2B-Instruct);
errors say what to pass instead of a bare OSError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ocrkit.config import ConfigError

LM_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _dtype(name: str) -> Any:
    if name == "auto":
        return "auto"
    try:
        return getattr(torch, name)
    except AttributeError:
        raise ConfigError(f"recipe key model.dtype: unknown dtype {name!r}") from None


def lora_config(settings: dict[str, Any]) -> Any:
    from peft import LoraConfig

    modules = settings.get("target_modules") or LM_MODULES
    # Only the language model: the vision towers reuse names such as gate_proj.
    pattern = rf"(.*\.)?language_model\..*\.({'|'.join(modules)})"
    return LoraConfig(
        r=int(settings.get("r", 16)),
        lora_alpha=int(settings.get("alpha", 32)),
        lora_dropout=float(settings.get("dropout", 0.05)),
        target_modules=pattern,
    )


def _missing(path: str | Path, exc: Exception) -> FileNotFoundError:
    return FileNotFoundError(
        f"cannot load the VLM from {str(path)!r} ({exc}); give model.base as a local folder of "
        f"Qwen2.5-VL-3B-Instruct / Qwen3-VL-2B-Instruct (config.json, safetensors, processor "
        f"files) or a hub id with network access"
    )


def load_processor(path: str | Path) -> Any:
    """``AutoProcessor.from_pretrained`` with an error that says what to pass."""
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise _missing(path, exc) from None


def load_vlm(path: str | Path, config: Any) -> Any:
    """``AutoModelForImageTextToText.from_pretrained`` with the recipe's dtype/attention."""
    from transformers import AutoModelForImageTextToText

    kwargs: dict[str, Any] = {"dtype": _dtype(config.dtype)}
    if config.attn_implementation:
        kwargs["attn_implementation"] = config.attn_implementation
    try:
        return AutoModelForImageTextToText.from_pretrained(str(path), **kwargs)
    except (OSError, ValueError) as exc:
        raise _missing(path, exc) from None
