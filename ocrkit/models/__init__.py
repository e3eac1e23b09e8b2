"""Recognition models: backbones, decoders and the :class:`Recognizer` that joins them.

Names are imported on first use, so ``ocrkit.models.default`` or ``ocrkit.models.checkpoint``
(and the ONNX runtime path) do not import torch.
"""

from __future__ import annotations

from ocrkit.utils.lazy import lazy_exports

_EXPORTS = {
    "BACKBONES": "ocrkit.models.backbones",
    "TextViT": "ocrkit.models.backbones",
    "TimmBackbone": "ocrkit.models.backbones",
    "build_backbone": "ocrkit.models.backbones",
    "DECODERS": "ocrkit.models.decoders",
    "ARDecoder": "ocrkit.models.decoders",
    "Recognizer": "ocrkit.models.recognizer",
    "RecognizerConfig": "ocrkit.models.recognizer_config",
    "load_recognizer": "ocrkit.models.recognizer",
}
__getattr__, __dir__ = lazy_exports("ocrkit.models", _EXPORTS, globals())

__all__ = sorted(_EXPORTS)
