"""PP-OCR recognition encoders: PP-LCNet backbone -> 3x2 average pool -> SVTR neck -> tokens.

``ppocrv6_rec_small`` (PPLCNetV4 + light SVTR neck) and ``ppocrv4_rec`` (PPLCNetV3 x0.95 + SVTR
neck) map a ``[B, 3, 48, W]`` crop to ``[B, W/8, 120]`` tokens: one CTC frame per 8 pixels of
width (40 frames at the reference width 320). Weights come from the ONNX files in the
``rapidocr`` wheels through ``ocrkit convert ppocr`` (:mod:`ocrkit.models.convert_ppocr`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ocrkit.models.backbones.pplcnet import PPLCNetV3, PPLCNetV4
from ocrkit.models.backbones.svtr_neck import LightSVTRNeck, SVTRNeck


class PPOCREncoder(nn.Module):
    """Backbone feature map ``[B, C, 3, W/4]`` -> pooled row ``[B, C, 1, W/8]`` -> neck tokens."""

    has_cls = False

    def __init__(self, backbone: nn.Module, neck: nn.Module, **_: Any) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.num_features = int(neck.num_features)

    def features(self, images: torch.Tensor, tail: int = 0) -> torch.Tensor:
        """The pooled backbone row ``[B, C, 1, W/8]``: the neck's input. With ``tail`` > 0 the
        backbone's map before its last ``tail`` blocks instead (what a cache of a body frozen
        but for its last blocks holds); :meth:`from_features` goes on from either."""
        if not tail:
            return F.avg_pool2d(self.backbone(images), (3, 2), (3, 2))
        return self.frozen_body(tail)(images)

    def from_features(self, features: torch.Tensor, tail: int = 0) -> torch.Tensor:
        """Tokens from :meth:`features` with the same ``tail``: the last ``tail`` backbone
        blocks, the pool, the neck."""
        if tail:
            blocks = self.backbone.blocks
            features = blocks[len(blocks) - tail :](features)
            features = F.avg_pool2d(features, (3, 2), (3, 2))
        return self.neck(features)

    def frozen_body(self, tail: int = 0) -> nn.Module:
        """The backbone but its last ``tail`` blocks, as one module sharing the weights (not a
        child: its parameters stay where they are in ``state_dict``)."""
        blocks = self.backbone.blocks
        if not 0 <= tail <= len(blocks):
            raise ValueError(f"tail: 0 to {len(blocks)} backbone blocks, got {tail}")
        if not tail:
            return self.backbone
        return nn.Sequential(self.backbone.stem, *blocks[: len(blocks) - tail])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.neck(self.features(images))


def ppocrv6_rec_small(img_size: tuple[int, int] | None = None, **kwargs: Any) -> PPOCREncoder:
    """PP-OCRv6 small recognizer encoder (PPLCNetV4 small + ``lightsvtr`` dims 120, depth 2)."""
    backbone = PPLCNetV4()
    neck = LightSVTRNeck(backbone.num_features, **kwargs)
    return PPOCREncoder(backbone, neck)


def ppocrv4_rec(img_size: tuple[int, int] | None = None, **kwargs: Any) -> PPOCREncoder:
    """PP-OCRv4 mobile recognizer encoder (PPLCNetV3 x0.95 + SVTR neck dims 120, depth 2)."""
    backbone = PPLCNetV3(scale=0.95)
    neck = SVTRNeck(backbone.num_features, **kwargs)
    return PPOCREncoder(backbone, neck)
