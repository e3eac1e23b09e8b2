"""The MDiff4STR losses (Du et al., AAAI 2026, §Method), each in one function.

``total = denoise_weight * denoising_loss + replace_weight * replacement_loss`` (1:1 in the
paper), averaged over the ``sample_k`` noised copies of every label.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def denoising_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    loss_mask: torch.Tensor,
    p_mask: torch.Tensor,
    lengths: torch.Tensor,
) -> torch.Tensor:
    """Mask-diffusion term (§Method, mask diffusion): cross-entropy at the masked positions,
    each weighted by ``1 / p_mask`` of its row, summed per row, divided by the row's ``L'`` and
    averaged over rows (the LLaDA-style normalization of the reference implementation).

    ``logits [N, T, C]``, ``labels [N, T]`` (PAD after ``L'``), ``loss_mask [N, T]`` bool,
    ``p_mask [N]`` and ``lengths [N]`` (``L'``).
    """
    ce = F.cross_entropy(
        logits.float().flatten(0, 1),
        labels.flatten().masked_fill(~loss_mask.flatten(), -100),
        reduction="none",
        ignore_index=-100,
    ).view(labels.shape)
    per_row = ce.sum(1) / p_mask.clamp(min=1e-6) / lengths.float()
    return per_row.mean()


def replacement_loss(logits: torch.Tensor, labels: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Token-replacement term (§Method, token-replacement noise): the pass over the replaced
    sequence must output the clean label; mean cross-entropy over every non-PAD position
    (characters and EOS)."""
    return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=pad_id)
