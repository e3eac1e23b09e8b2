"""MIM: MAE-style masked image modeling of word images (the MAERec pretraining setting).

He et al., "Masked Autoencoders Are Scalable Vision Learners" (CVPR 2022), in MAERec's setting
(Jiang et al., ICCV 2023): ViT-S/4 on 32x128, random masking (80% here, as MNSP's tables use;
MAE's 75% is ``mask_ratio=0.75``), the encoder sees the visible tokens only, a light decoder
fills in mask tokens and predicts every patch; the loss is the MSE on masked patches. Targets
are per-patch normalized pixels (MAE's ``norm_pix_loss``) or a frozen teacher's tokens.

This is the "MIM" baseline of the MNSP tables and how the frozen MNSP teacher is produced.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from ocrkit.pretrain.base import PretrainModel
from ocrkit.pretrain.configs import MIMConfig
from ocrkit.pretrain.decoders import MaskedDecoder
from ocrkit.pretrain.losses import mim_loss
from ocrkit.pretrain.masking import random_masking


class MaskedImageModel(PretrainModel):
    """Encoder on visible tokens + MAE decoder; ``training_step`` returns ``{"loss"}``."""

    architecture: ClassVar[str] = "MIM"
    config_class: ClassVar[type[MIMConfig]] = MIMConfig

    def __init__(self, config: Mapping[str, Any] | None = None, teacher: nn.Module | None = None):
        super().__init__(config or {}, teacher)
        d = self.config["decoder"]
        self.decoder = MaskedDecoder(
            self.encoder.num_features,
            self.target_dim,
            dim=d["dim"],
            depth=d["depth"],
            num_heads=d["num_heads"],
            base_grid=self.base_grid,
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MaskedImageModel:
        return cls(config)

    def required_views(self) -> tuple[str, ...]:
        return ("image",)

    def forward(self, images: torch.Tensor, mask_ratio: float | None = None) -> dict[str, Any]:
        """Predictions ``[B, N, target_dim]``, the masking and the encoder tokens of ``images``."""
        ratio = self.config["mask_ratio"] if mask_ratio is None else mask_ratio
        grid = self.grid(images.shape[-2:])
        masking = random_masking(images.shape[0], grid[0] * grid[1], ratio, images.device)
        tokens = self.encoder(images, ids_keep=masking.ids_keep)
        pred = self.decoder(tokens, masking, grid)
        return {"pred": pred, "masking": masking, "tokens": tokens}

    def training_step(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """``batch["images"] [B, 3, 32, 128]`` (or ``batch["views"]["image"]``) -> ``{"loss"}``."""
        images = batch["views"]["image"] if "views" in batch else batch["images"]
        images = images.to(next(self.encoder.parameters()).device)
        out = self(images)
        loss = mim_loss(out["pred"], self.targets(images), out["masking"].mask)
        return {"loss": loss}
