"""Every pretraining loss in one place: targets, L_nsp, L_mim (also the MAE baseline), L_mla.

MNSP (Chen et al., 2026, Sec. 3) trains with ``L = L_nsp + L_mim + L_mla``. Feature targets are a
frozen teacher's patch tokens, as they are (MNSP's Eq. 3, the default there) or normalized by a
LayerNorm without affine parameters (LMIM's convention, ``target_norm: layernorm``; the MIM
baseline's default); pixel targets are MAE's per-patch normalized pixels (``norm_pix_loss``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """``[B, 3, H, W]`` -> ``[B, (H/p)(W/p), p*p*3]``, row-major patches, pixels as (y, x, c)."""
    b, c, h, w = images.shape
    if h % patch or w % patch:
        raise ValueError(f"image {h}x{w} is not divisible by patch size {patch}")
    x = images.reshape(b, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // patch) * (w // patch), patch * patch * c)


TARGET_NORMS = ("none", "layernorm")


def feature_target(tokens: torch.Tensor, norm: str = "layernorm") -> torch.Tensor:
    """Teacher patch tokens ``[B, N, C]`` in fp32: normalized per token (LayerNorm, no affine;
    LMIM's convention) with ``norm="layernorm"``, as they are with ``"none"``."""
    if norm not in TARGET_NORMS:
        raise ValueError(f"target_norm must be one of {TARGET_NORMS}, got {norm!r}")
    if norm == "none":
        return tokens.float()
    return F.layer_norm(tokens.float(), (tokens.shape[-1],))


def pixel_target(images: torch.Tensor, patch: int, normalize: bool = True) -> torch.Tensor:
    """Pixel patches ``[B, N, p*p*3]``; per-patch zero mean, unit variance when ``normalize``."""
    target = patchify(images.float(), patch)
    if normalize:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1.0e-6).sqrt()
    return target


def token_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``[B, N]`` squared error per token, averaged over the channel dimension."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} != target {tuple(target.shape)}")
    return (pred.float() - target.float()).pow(2).mean(dim=-1)


def nsp_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_nsp: MSE between ``D_nsp(F)`` and the teacher's tokens at the next scale, all tokens."""
    return token_mse(pred, target).mean()


def mim_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L_mim (and MAE's loss): MSE averaged over the masked tokens only (``mask`` 1 = hidden)."""
    per_token = token_mse(pred, target)
    return (per_token * mask).sum() / mask.sum().clamp_min(1.0)


def mla_loss(
    cls_masked: torch.Tensor, cls_small: torch.Tensor, cls_large: torch.Tensor
) -> torch.Tensor:
    """L_mla = ||E(s_mask)^cls - E(s_k)^cls||^2 + ||E(s_mask)^cls - E(s_k+1)^cls||^2.

    Each squared norm is averaged over channels and the batch (LMIM's ``mean()`` convention), so
    the term has the scale of the MSE losses it is added to. Gradients reach all three views.
    """
    first = (cls_masked.float() - cls_small.float()).pow(2).mean()
    second = (cls_masked.float() - cls_large.float()).pow(2).mean()
    return first + second
