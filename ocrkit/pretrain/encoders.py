"""Encoders for pretraining: build the student, load any ocrkit encoder (teacher, viz), save.

A pretraining output folder holds ``config.json`` (``format: ocrkit-pretrain``, the encoder spec,
the whole model config) and ``model.safetensors`` with the student's weights under ``encoder.``
(decoders beside it, the frozen teacher left out). ``Recognizer.load_encoder_weights(folder)``
and ``init: {encoder: folder}`` of the ``str`` task read it as is.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ocrkit.models.backbones import TextViT, build_backbone
from ocrkit.models.checkpoint import split_spec
from ocrkit.models.recognizer import ENCODER_PREFIXES
from ocrkit.models.weights import load_state_dict, select_prefix
from ocrkit.utils import model_folder

log = logging.getLogger(__name__)

PRETRAIN_FORMAT = model_folder.PRETRAIN


def encoder_spec(spec: str | Mapping[str, Any]) -> dict[str, Any]:
    """The spec as a dict with ``pos_embed`` made explicit (``sincos`` unless given: MAE/LMIM
    use fixed 2D sin-cos positions), so a saved folder rebuilds the same encoder."""
    name, kwargs = split_spec(spec)
    kwargs.setdefault("pos_embed", "sincos")
    return {"name": name, **kwargs}


def build_encoder(spec: str | Mapping[str, Any], img_size: Sequence[int] = (32, 128)) -> TextViT:
    """A :class:`TextViT` student built from :func:`encoder_spec` ``(spec)``.

    Masked and multi-scale pretraining needs an encoder that encodes a subset of tokens
    (``ids_keep``) on any grid, which the ViT backbones do.
    """
    name, kwargs = split_spec(encoder_spec(spec))
    encoder = build_backbone(name, img_size=tuple(int(v) for v in img_size), **kwargs)
    if not isinstance(encoder, TextViT):
        raise ValueError(
            f"pretraining needs a ViT encoder (vit_tiny, vit_small, vit_base), got {name!r}"
        )
    return encoder


def read_encoder_config(directory: Path) -> tuple[dict[str, Any], list[int]]:
    """(encoder spec, img_size) of a pretraining or recognizer folder, by its ``format``."""
    try:
        found = model_folder.read_config(directory)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"{exc}; pass a folder written by 'ocrkit train' (a recognizer or a mim/mnsp "
            "pretraining output), or a .safetensors file with an explicit encoder spec"
        ) from None
    config = found.config
    key = {PRETRAIN_FORMAT: "encoder", model_folder.RECOGNIZER: "backbone"}.get(found.format)
    spec = config.get(key) if key else None
    if spec is None:
        raise ValueError(f"{found.file}: format {found.format!r} holds no ocrkit encoder")
    spec = {"name": spec} if isinstance(spec, str) else dict(spec)
    for key in ("checkpoint_path", "trust_pickle"):
        spec.pop(key, None)
    return spec, list(config.get("img_size", [32, 128]))


def load_encoder(
    source: str | Path,
    spec: str | Mapping[str, Any] | None = None,
    img_size: Sequence[int] | None = None,
    trust_pickle: bool = False,
) -> nn.Module:
    """Any ocrkit encoder, in eval mode: a pretraining folder, a recognizer folder (its
    backbone; ``default`` and ``tiny`` name the embedded ones), or a weights file
    (``.safetensors``) together with ``spec``.

    Weights are taken under the first of ``backbone.``, ``encoder.``, ``model.encoder.`` or no
    prefix that matches; every encoder tensor must be present.
    """
    from ocrkit.models.default import resolve_model_path

    source = resolve_model_path(source)  # 'default', 'tiny': the embedded recognizers
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist")
    if spec is None:
        folder = source if source.is_dir() else source.parent
        spec, saved_size = read_encoder_config(folder)
        img_size = img_size or saved_size
    name, kwargs = split_spec(spec)
    encoder = build_backbone(name, img_size=tuple(img_size or (32, 128)), **kwargs)
    state = load_state_dict(source, trust_pickle=trust_pickle)
    sub, prefix = select_prefix(state, ENCODER_PREFIXES)
    missing, unexpected = encoder.load_state_dict(sub, strict=False)
    if missing:
        raise ValueError(
            f"{source} does not hold a complete {name} encoder under prefix {prefix!r} "
            f"(missing {missing[:4]}...); check the encoder spec"
        )
    if unexpected and prefix:
        log.warning("%s: %d unexpected encoder tensors ignored", source, len(unexpected))
    return encoder.eval()


def freeze(module: nn.Module) -> nn.Module:
    """No gradients, eval mode (dropout/drop-path off): a frozen teacher."""
    module.requires_grad_(False)
    return module.eval()


def save_pretrain_folder(
    directory: str | Path,
    architecture: str,
    config: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    exclude_prefixes: Sequence[str] = ("teacher.",),
) -> Path:
    """Write ``model.safetensors`` (without ``exclude_prefixes``) then ``config.json``."""
    from safetensors.torch import save_file

    from ocrkit import __version__

    tensors = {
        k: v.detach().to("cpu").contiguous()
        for k, v in state_dict.items()
        if not any(k.startswith(p) for p in exclude_prefixes)
    }
    config = copy.deepcopy(dict(config))

    def write(tmp: Path) -> dict[str, Any]:
        metadata = {"format": "pt", "ocrkit": __version__}
        save_file(tensors, str(tmp / model_folder.WEIGHTS_NAME), metadata=metadata)
        return {
            "format": PRETRAIN_FORMAT,
            "architecture": architecture,
            "ocrkit_version": __version__,
            "encoder": config["encoder"],
            "img_size": config["img_size"],
            "model": config,
        }

    return model_folder.write_folder(directory, PRETRAIN_FORMAT, write)
