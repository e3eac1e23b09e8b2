"""The one weight initialization every ocrkit transformer uses (ViT/BERT convention)."""

from __future__ import annotations

from timm.layers import trunc_normal_
from torch import nn


def init_transformer_weights(module: nn.Module) -> None:
    """Linear and embedding weights ~ truncated N(0, 0.02), zero biases, LayerNorm to identity.

    Apply with ``model.apply(init_transformer_weights)``; other module types are left as built.
    """
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        trunc_normal_(module.weight, std=0.02)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
