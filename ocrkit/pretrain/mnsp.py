"""MNSP: Masked Next-Scale Prediction (Chen et al., arXiv 2605.14885, Sec. 3).

One encoder ``E`` (a :class:`~ocrkit.models.TextViT`), a frozen teacher ``E_t``, and per step
one adjacent pair of scales ``(s_k, s_k+1)`` drawn uniformly from ``scales`` (default 4x16,
8x32, 16x64, 32x128: 4, 16, 64, 256 tokens with 4x4 patches). Three branches:

* **NSP** -- ``E(s_k)`` patch tokens ([CLS] dropped) are bicubically upsampled on their grid to
  the ``s_k+1`` grid (``F``); ``D_nsp`` (2 blocks: self-attention -> cross-attention to
  ``E(s_k)`` -> FFN) predicts the teacher's tokens of the other view at ``s_k+1``:
  ``L_nsp = MSE(D_nsp(F), E_t(s_k+1))`` over all patch tokens.
* **MIM with NSP guidance** -- a zoomed-in view, 80% masked, is encoded from its visible tokens;
  a 2-block decoder fills mask tokens, block 1 cross-attends to ``E(s_k)`` and block 2 to
  ``D_nsp(F)`` (not detached: ``L_mim`` trains the NSP decoder too); ``L_mim`` is the MSE on
  masked tokens against ``E_t(I)`` of Eq. 3: the teacher runs on the *original* image and each
  zoom-view token's target is the teacher's feature at the same image location (the teacher's
  grid cropped to the zoom box and resampled to the zoom grid, :func:`crop_tokens`;
  ``mim_target: zoom`` is the teacher on the zoom view itself, ocrkit's earlier reading).
* **MLA** -- ``L_mla = ||E(s_mask)^cls - E(s_k)^cls||^2 + ||E(s_mask)^cls - E(s_k+1)^cls||^2``.

``L = L_nsp + L_mim + L_mla``. Feature targets are the teacher's tokens as they are
(``target_norm: none``; ``layernorm`` is LMIM's per-token non-affine LayerNorm). Every ablation of the paper is a switch (see :data:`ABLATIONS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from ocrkit.pretrain.base import PretrainModel
from ocrkit.pretrain.configs import DEFAULT_SCALES, MIM_TARGETS, MNSPConfig  # noqa: F401
from ocrkit.pretrain.decoders import MaskedDecoder, NSPDecoder
from ocrkit.pretrain.losses import mim_loss, mla_loss, nsp_loss
from ocrkit.pretrain.masking import random_masking
from ocrkit.pretrain.views import crop_tokens, resize_images, upsample_tokens

# Recipe overrides of each ablation in the paper's Tables 3, 4, 5 and 7.
ABLATIONS: dict[str, dict[str, Any]] = {
    "nsp_only": {"mim": False, "mla": False, "guidance": False},
    "mim_only": {"nsp": False, "mla": False, "guidance": False},
    "no_mla": {"mla": False},
    "no_guidance": {"guidance": False},
    "no_zoom": {"zoom": None},
    "no_augment": {"augment": "none"},
    "pixel_targets": {"target": "pixel"},
}


class MNSP(PretrainModel):
    """The MNSP pretraining model; ``training_step`` returns the three losses and their sum."""

    architecture: ClassVar[str] = "MNSP"
    config_class: ClassVar[type[MNSPConfig]] = MNSPConfig

    def __init__(self, config: Mapping[str, Any] | None = None, teacher: nn.Module | None = None):
        super().__init__(config or {}, teacher)
        c = self.config
        self.use_nsp, self.use_mim = bool(c["nsp"]), bool(c["mim"])
        self.use_mla, self.use_guidance = bool(c["mla"]), bool(c["guidance"])
        self._check_switches()
        self.scales = [tuple(int(v) for v in s) for s in c["scales"]]
        self.grids = [self.grid(s) for s in self.scales]
        if len(self.scales) < 2 or any(
            b[0] <= a[0] or b[1] <= a[1] for a, b in zip(self.grids, self.grids[1:])
        ):
            raise ValueError(f"model.scales must be >= 2 increasing sizes, got {c['scales']}")
        width = self.encoder.num_features
        self.nsp_decoder: NSPDecoder | None = None
        self.mim_decoder: MaskedDecoder | None = None
        if self.use_nsp:
            d = c["nsp_decoder"]
            self.nsp_decoder = NSPDecoder(
                width,
                self.target_dim,
                dim=d["dim"],
                depth=d["depth"],
                num_heads=d["num_heads"] or self.encoder.num_heads,
                base_grid=self.base_grid,
            )
        if self.use_mim:
            d = c["mim_decoder"]
            memory_dims = [width, self.target_dim] if self.use_guidance else []
            self.mim_decoder = MaskedDecoder(
                width,
                self.target_dim,
                dim=d["dim"],
                depth=d["depth"],
                num_heads=d["num_heads"],
                memory_dims=memory_dims,
                base_grid=self.base_grid,
            )

    def _check_switches(self) -> None:
        if not (self.use_nsp or self.use_mim):
            raise ValueError("model.nsp and model.mim are both off: nothing to train")
        if self.use_guidance and not (self.use_nsp and self.use_mim):
            raise ValueError("model.guidance needs both branches; set model.guidance=false")
        if self.use_mla and not self.use_mim:
            raise ValueError("model.mla aligns the masked view's [CLS]; it needs model.mim=true")
        if self.config["mim_decoder"]["depth"] < 2 and self.use_guidance:
            raise ValueError("NSP guidance uses two MIM decoder blocks; mim_decoder.depth >= 2")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MNSP:
        return cls(config)

    @property
    def mim_from_original(self) -> bool:
        """Whether L_mim's targets come from the teacher on the original image (Eq. 3)."""
        return self.use_mim and self.teacher is not None and self.config["mim_target"] == "original"

    def required_views(self) -> tuple[str, ...]:
        views = ("small", "large") if (self.use_nsp or self.use_mla) else ()
        views += ("zoom",) if self.use_mim else ()
        return views + (("original",) if self.mim_from_original else ())

    @torch.no_grad()
    def mim_targets(self, views: Mapping[str, torch.Tensor], grid: tuple[int, int]) -> torch.Tensor:
        """L_mim's targets for the zoom view's ``grid`` (see the module docstring)."""
        zoom = views["zoom"]
        if not self.mim_from_original:
            return self.targets(zoom.to(next(self.encoder.parameters()).device))
        if "original" not in views or "zoom_box" not in views:
            raise ValueError(
                "mim_target=original needs the 'original' view and 'zoom_box' "
                "(model.view_transform() makes them); or set model.mim_target=zoom"
            )
        original = views["original"].to(zoom.device)
        tokens = self.teacher(original, return_cls=False)
        full = self.grid(original.shape[-2:])
        return self.feature_targets(crop_tokens(tokens, full, views["zoom_box"], grid))

    def sample_pair(self) -> int:
        """``k`` of the pair ``(s_k, s_k+1)``, uniform, from torch's global RNG."""
        return int(torch.randint(len(self.scales) - 1, (1,)).item())

    def training_step(
        self, batch: Mapping[str, Any], pair: int | None = None
    ) -> dict[str, torch.Tensor]:
        """``batch["views"]`` = ``{"small", "large", "zoom"}`` ``[B, 3, 32, 128]`` ->
        ``{"loss", "loss_nsp", "loss_mim", "loss_mla"}`` (the branches that are on).

        ``pair`` fixes ``k`` (0-based: 0 is (s1, s2)); by default it is drawn per step.
        """
        out = self.forward(batch["views"], pair)
        losses = {k: v for k, v in out.items() if k.startswith("loss_")}
        extra = {"mim_target_var": out["mim_target_var"]} if "mim_target_var" in out else {}
        return {"loss": sum(losses.values()), **losses, **extra}

    def forward(self, views: Mapping[str, torch.Tensor], pair: int | None = None) -> dict[str, Any]:
        """All branch outputs and losses for one batch of views (see the module docstring)."""
        k = self.sample_pair() if pair is None else int(pair)
        if not 0 <= k < len(self.scales) - 1:
            raise ValueError(f"pair {k} out of range for {len(self.scales)} scales")
        device = next(self.encoder.parameters()).device
        out: dict[str, Any] = {"pair": k}
        small = large = None
        if self.use_nsp or self.use_mla:
            x_small = resize_images(views["small"].to(device), self.scales[k])
            x_large = resize_images(views["large"].to(device), self.scales[k + 1])
            small = self.encoder(x_small)  # E(s_k): [B, 1 + N(s_k), C]
            out["e_small"] = small
        if self.use_nsp:
            upsampled = upsample_tokens(small[:, 1:], self.grids[k], self.grids[k + 1])
            d_nsp = self.nsp_decoder(upsampled, self.grids[k + 1], small[:, 1:])
            out["d_nsp"] = d_nsp
            out["loss_nsp"] = nsp_loss(d_nsp, self.targets(x_large))
        if self.use_mla:
            large = self.encoder(x_large)  # E(s_k+1), for its [CLS]
            out["e_large"] = large
        if self.use_mim:
            zoom = views["zoom"].to(device)
            grid = self.grid(zoom.shape[-2:])
            masking = random_masking(
                zoom.shape[0], grid[0] * grid[1], self.config["mask_ratio"], device
            )
            masked = self.encoder(zoom, ids_keep=masking.ids_keep)  # E(s_mask): visible only
            memories = [small[:, 1:], out["d_nsp"]] if self.use_guidance else []
            pred = self.mim_decoder(masked, masking, grid, memories)
            out.update(e_masked=masked, masking=masking, mim_pred=pred)
            target = self.mim_targets({**views, "zoom": zoom}, grid)
            out["loss_mim"] = mim_loss(pred, target, masking.mask)
            # per-token variance of the targets (logged): loss_mim / it compares target choices
            out["mim_target_var"] = target.float().var(dim=1).mean().detach()
        if self.use_mla:
            out["loss_mla"] = mla_loss(out["e_masked"][:, 0], small[:, 0], large[:, 0])
        return out
