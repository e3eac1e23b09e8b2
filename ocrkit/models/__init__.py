"""Recognition models: backbones, decoders and the :class:`Recognizer` that joins them."""

from ocrkit.models.backbones import BACKBONES, TextViT, TimmBackbone, build_backbone
from ocrkit.models.decoders import DECODERS, ARDecoder
from ocrkit.models.recognizer import Recognizer, load_recognizer

__all__ = [
    "BACKBONES",
    "DECODERS",
    "ARDecoder",
    "Recognizer",
    "TextViT",
    "TimmBackbone",
    "build_backbone",
    "load_recognizer",
]
