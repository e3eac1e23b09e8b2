"""Image encoders that turn word images into tokens ``[B, N, C]``.

Every backbone exposes ``num_features`` (token width) and ``has_cls`` (whether token 0 is a
[CLS] token). ``ppocrv6_rec_small`` and ``ppocrv4_rec`` are PP-OCR's recognition encoders
(48-pixel-high crops of any width). Build one by name with :func:`build_backbone`; ``timm:<model_name>`` wraps any timm
model.

Entries are registered lazily: a backbone's module (and timm, which only the ViT, SVTRv2 and timm
backbones need) is imported when that backbone is first built.
"""

from __future__ import annotations

from typing import Any

from ocrkit.registry import Registry
from ocrkit.utils.lazy import lazy_exports

_PACKAGE = "ocrkit.models.backbones"
BACKBONES: Registry[Any] = Registry("backbone")
TIMM_PREFIX = "timm:"
VIT_NAMES = ("vit_tiny", "vit_small", "vit_base")  # the keys of vit.VIT_CONFIGS


def _vit_factory(name: str):
    def factory(**kwargs: Any):
        from ocrkit.models.backbones.vit import VIT_CONFIGS, TextViT

        return TextViT(**{**VIT_CONFIGS[name], **kwargs})

    factory.__name__ = name
    factory.__doc__ = f"{name}: TextViT with vit.VIT_CONFIGS[{name!r}] (overridable by kwargs)."
    return factory


for _name in VIT_NAMES:
    BACKBONES.register(_name)(_vit_factory(_name))

BACKBONES.register_lazy("timm", f"{_PACKAGE}.timm_backbone:TimmBackbone")
BACKBONES.register_lazy("svtrv2_small", f"{_PACKAGE}.svtrv2:svtrv2_small")
BACKBONES.register_lazy("svtrv2_base", f"{_PACKAGE}.svtrv2:svtrv2_base")
BACKBONES.register_lazy("ppocrv6_rec_small", f"{_PACKAGE}.ppocr:ppocrv6_rec_small")
BACKBONES.register_lazy("ppocrv4_rec", f"{_PACKAGE}.ppocr:ppocrv4_rec")


def build_backbone(name: str, **kwargs: Any) -> Any:
    """``BACKBONES.build(name, **kwargs)``, plus ``timm:<model_name>`` for any timm model."""
    if name.startswith(TIMM_PREFIX):
        return BACKBONES.get("timm")(name[len(TIMM_PREFIX) :], **kwargs)
    return BACKBONES.build(name, **kwargs)


_EXPORTS = {
    "PPOCREncoder": f"{_PACKAGE}.ppocr",
    "SVTRv2": f"{_PACKAGE}.svtrv2",
    "TextViT": f"{_PACKAGE}.vit",
    "VIT_CONFIGS": f"{_PACKAGE}.vit",
    "TimmBackbone": f"{_PACKAGE}.timm_backbone",
}
__getattr__, __dir__ = lazy_exports(_PACKAGE, _EXPORTS, globals())

__all__ = ["BACKBONES", "PPOCREncoder", "SVTRv2", "TextViT", "TimmBackbone", "build_backbone"]
