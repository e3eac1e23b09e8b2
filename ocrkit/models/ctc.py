"""Auxiliary CTC head on the encoder's patch tokens: a training-time alignment signal.

Attention decoders trained from scratch on little data sit on the language-model plateau (they
predict likely words without looking) for thousands of steps before cross-attention finds the
characters. A CTC loss on the encoder columns (joint CTC-attention training, Kim, Hori and
Watanabe, ICASSP 2017) teaches the encoder per-column character features from the first steps,
which the decoder then reads. Inference never uses this head.
"""

from __future__ import annotations

import torch
from torch import nn

from ocrkit.models.decoders.ctc import ctc_loss_from_targets


class CTCAuxHead(nn.Module):
    """Column-pooled patch tokens -> ``upsample`` CTC frames per column -> CTC loss.

    Class 0 (the tokenizer's EOS id) serves as the CTC blank; characters keep their ids, so the
    head needs no vocabulary of its own. ``upsample`` frames per column let a coarse grid (16
    columns at patch 8) still emit words longer than its column count.
    """

    def __init__(self, in_features: int, num_classes: int, upsample: int = 2) -> None:
        super().__init__()
        self.upsample = upsample
        self.num_classes = num_classes
        self.norm = nn.LayerNorm(in_features)
        self.proj = nn.Linear(in_features, num_classes * upsample)

    def forward(self, patch_tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """``[B, h*w, C]`` (row-major) -> log-probabilities ``[T = w * upsample, B, K]``."""
        b, n, c = patch_tokens.shape
        h, w = grid
        if n != h * w:
            raise ValueError(f"{n} patch tokens do not fill a {h}x{w} grid")
        columns = patch_tokens.reshape(b, h, w, c).mean(dim=1)
        logits = self.proj(self.norm(columns)).reshape(b, w * self.upsample, self.num_classes)
        return logits.float().log_softmax(-1).transpose(0, 1)

    def loss(
        self, patch_tokens: torch.Tensor, grid: tuple[int, int], targets: torch.Tensor, eos: int
    ) -> torch.Tensor:
        """CTC loss against ``targets`` (characters then EOS then PAD, no BOS) ``[B, L]``."""
        return ctc_loss_from_targets(self(patch_tokens, grid), targets, eos)
