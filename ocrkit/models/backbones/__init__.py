"""Image encoders that turn word images into tokens ``[B, N, C]``.

Every backbone exposes ``num_features`` (token width) and ``has_cls`` (whether token 0 is a
[CLS] token). ``ppocrv6_rec_small`` and ``ppocrv4_rec`` are PP-OCR's recognition encoders
(48-pixel-high crops of any width). Build one by name with :func:`build_backbone`; ``timm:<model_name>`` wraps any timm
model.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ocrkit.models.backbones.ppocr import PPOCREncoder, ppocrv4_rec, ppocrv6_rec_small
from ocrkit.models.backbones.svtrv2 import SVTRv2, svtrv2_base, svtrv2_small
from ocrkit.models.backbones.timm_backbone import TimmBackbone
from ocrkit.models.backbones.vit import VIT_CONFIGS, TextViT
from ocrkit.registry import Registry

BACKBONES: Registry[nn.Module] = Registry("backbone")
TIMM_PREFIX = "timm:"


def _vit_factory(name: str):
    def factory(**kwargs: Any) -> TextViT:
        return TextViT(**{**VIT_CONFIGS[name], **kwargs})

    factory.__name__ = name
    factory.__doc__ = f"{name}: TextViT with {VIT_CONFIGS[name]} (overridable by kwargs)."
    return factory


for _name in VIT_CONFIGS:
    BACKBONES.register(_name)(_vit_factory(_name))

BACKBONES.register("timm")(TimmBackbone)

BACKBONES.register("svtrv2_small")(svtrv2_small)
BACKBONES.register("svtrv2_base")(svtrv2_base)
BACKBONES.register("ppocrv6_rec_small")(ppocrv6_rec_small)
BACKBONES.register("ppocrv4_rec")(ppocrv4_rec)


def build_backbone(name: str, **kwargs: Any) -> nn.Module:
    """``BACKBONES.build(name, **kwargs)``, plus ``timm:<model_name>`` for any timm model."""
    if name.startswith(TIMM_PREFIX):
        return TimmBackbone(name[len(TIMM_PREFIX) :], **kwargs)
    return BACKBONES.build(name, **kwargs)


__all__ = ["BACKBONES", "PPOCREncoder", "SVTRv2", "TextViT", "TimmBackbone", "build_backbone"]
