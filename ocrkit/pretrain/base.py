"""What the MIM and MNSP models share: the config, the frozen teacher, targets, saving."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ocrkit.pretrain.configs import TARGETS, MIMConfig, MNSPConfig  # noqa: F401  (TARGETS: re-export)
from ocrkit.pretrain.encoders import build_encoder, freeze, load_encoder, save_pretrain_folder
from ocrkit.pretrain.losses import feature_target, pixel_target
from ocrkit.pretrain.views import PretrainViews

log = logging.getLogger(__name__)


class PretrainModel(nn.Module):
    """Base of :class:`~ocrkit.pretrain.mim.MaskedImageModel` and :class:`~ocrkit.pretrain.mnsp.MNSP`.

    Holds the student ``encoder`` (a :class:`~ocrkit.models.TextViT`) and, for feature targets,
    a frozen ``teacher`` encoder that never receives gradients and always runs in eval mode.
    """

    architecture: ClassVar[str] = ""
    config_class: ClassVar[type[MIMConfig] | type[MNSPConfig]]  # the model: section's dataclass

    def __init__(self, config: Mapping[str, Any], teacher: nn.Module | None = None) -> None:
        super().__init__()
        self.config = self.config_class.from_dict(config).to_dict()  # config.json's model entry
        c = self.config
        self.encoder = build_encoder(c["encoder"], c["img_size"])
        self.patch = self.encoder.patch_size
        self.base_grid = self.encoder.base_grid
        self.target = c["target"]
        self.teacher: nn.Module | None = None
        if self.target == "feature":
            if teacher is None:
                teacher = self._load_teacher(c.get("teacher"))
            if getattr(teacher, "patch_size", self.patch) != self.patch:
                raise ValueError(
                    f"teacher patch size {teacher.patch_size} != student patch size {self.patch}: "
                    "their token grids must match"
                )
            self.teacher = freeze(teacher)
            self.target_dim = int(teacher.num_features)
        else:
            if c.get("teacher"):
                log.info("target=pixel: the teacher %s is not used", c["teacher"])
            self.target_dim = self.patch * self.patch * 3

    def _load_teacher(self, path: str | None) -> nn.Module:
        if not path:
            raise ValueError(
                "target=feature needs a frozen teacher: set model.teacher=PATH to an ocrkit "
                "encoder (a mim pretraining output such as runs/pretrain/mim_vit_small/final, "
                "or a recognizer folder), or use model.target=pixel"
            )
        if not Path(path).exists():
            raise FileNotFoundError(f"teacher checkpoint {path} does not exist")
        teacher = load_encoder(path)
        log.info("teacher: %s (%d-d tokens)", path, teacher.num_features)
        return teacher

    # ---- targets ------------------------------------------------------------------------
    @torch.no_grad()
    def targets(self, images: torch.Tensor) -> torch.Tensor:
        """Per-patch regression targets ``[B, N, target_dim]`` of ``images`` (no gradients)."""
        if self.teacher is not None:
            return self.feature_targets(self.teacher(images, return_cls=False))
        return pixel_target(images, self.patch, normalize=bool(self.config["norm_pix"]))

    def feature_targets(self, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher tokens as regression targets (``model.target_norm``)."""
        return feature_target(tokens, self.config.get("target_norm", "layernorm"))

    def grid(self, size: tuple[int, int] | list[int]) -> tuple[int, int]:
        return self.encoder.grid_size(int(size[0]), int(size[1]))

    # ---- data ---------------------------------------------------------------------------
    def required_views(self) -> tuple[str, ...]:
        raise NotImplementedError

    def view_transform(self) -> PretrainViews:
        """The data-side transform producing the views this model reads."""
        c = self.config
        return PretrainViews(
            self.required_views(), c["img_size"], augment=c.get("augment"), zoom=c.get("zoom")
        )

    # ---- modes and saving ---------------------------------------------------------------
    def train(self, mode: bool = True) -> PretrainModel:
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def save_pretrained(self, directory: str | Path) -> Path:
        """``config.json`` + ``model.safetensors`` (student and decoders, no teacher)."""
        return save_pretrain_folder(directory, self.architecture, self.config, self.state_dict())
