"""Random patch masking (MAE): which tokens the encoder sees and where the mask tokens go."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Masking:
    """One batch of random masks over ``N`` patch tokens (row-major on the patch grid).

    ``ids_keep [B, K]`` are the visible tokens in increasing order, ``ids_masked [B, N - K]`` the
    hidden ones, ``mask [B, N]`` is 1.0 where hidden, and ``ids_restore [B, N]`` puts the
    sequence ``cat(visible, masked)`` back into grid order (``torch.gather(seq, 1, ids_restore)``).
    """

    ids_keep: torch.Tensor
    ids_masked: torch.Tensor
    ids_restore: torch.Tensor
    mask: torch.Tensor

    @property
    def num_visible(self) -> int:
        return self.ids_keep.shape[1]


def num_visible(num_tokens: int, mask_ratio: float) -> int:
    """``int(N * (1 - ratio))`` as in MAE (at least one token stays visible)."""
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    return max(1, int(num_tokens * (1.0 - mask_ratio)))


def random_masking(
    batch: int,
    num_tokens: int,
    mask_ratio: float,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> Masking:
    """Per-sample uniform random masking of ``mask_ratio`` of ``num_tokens`` (MAE, Sec. 3).

    Each sample hides a different random subset of the same size, drawn by sorting uniform
    noise, so every subset of that size is equally likely.
    """
    keep = num_visible(num_tokens, mask_ratio)
    if generator is not None:  # draw where the generator lives, then move
        noise = torch.rand(batch, num_tokens, generator=generator, device=generator.device)
        noise = noise.to(device) if device is not None else noise
    else:
        noise = torch.rand(batch, num_tokens, device=device)
    shuffle = torch.argsort(noise, dim=1)
    ids_keep = shuffle[:, :keep].sort(dim=1).values
    ids_masked = shuffle[:, keep:].sort(dim=1).values
    order = torch.cat([ids_keep, ids_masked], dim=1)
    ids_restore = torch.argsort(order, dim=1)
    mask = torch.ones(batch, num_tokens, device=noise.device)
    mask.scatter_(1, ids_keep, 0.0)
    return Masking(ids_keep, ids_masked, ids_restore, mask)


def unshuffle(visible: torch.Tensor, mask_token: torch.Tensor, masking: Masking) -> torch.Tensor:
    """Visible tokens ``[B, K, D]`` plus a mask token at every hidden place: ``[B, N, D]``."""
    b, k, d = visible.shape
    n = masking.ids_restore.shape[1]
    fill = mask_token.to(visible.dtype).expand(b, n - k, d)
    seq = torch.cat([visible, fill], dim=1)
    return torch.gather(seq, 1, masking.ids_restore.unsqueeze(-1).expand(-1, -1, d))
