"""Position embeddings for patch grids of any size: fixed 2D sin-cos and resampled learned ones."""

from __future__ import annotations

import torch
from timm.layers import resample_abs_pos_embed


def sincos_1d(dim: int, pos: torch.Tensor, temperature: float = 10000.0) -> torch.Tensor:
    """``[len(pos), dim]``: sin on the first half, cos on the second (MAE's convention)."""
    if dim % 2:
        raise ValueError(f"sin-cos embedding needs an even dim, got {dim}")
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0)
    omega = 1.0 / temperature**omega
    out = pos.double().reshape(-1, 1) * omega.reshape(1, -1)
    return torch.cat([out.sin(), out.cos()], dim=1)


def sincos_2d(
    dim: int, grid: tuple[int, int], base_grid: tuple[int, int] | None = None
) -> torch.Tensor:
    """Fixed 2D sin-cos embedding ``[h * w, dim]`` of a patch grid (row-major).

    As in MAE (He et al., 2022), half the channels encode the column and half the row. Patch
    centres are expressed in units of ``base_grid`` cells, so at the base grid this equals MAE's
    table exactly and at other grids (4x16, 16x64, ...) a patch covering the same image region
    gets the same code: the continuous embedding sampled at the new centres.
    """
    if dim % 4:
        raise ValueError(f"2D sin-cos embedding needs dim divisible by 4, got {dim}")
    h, w = grid
    bh, bw = base_grid or grid
    ys = (torch.arange(h, dtype=torch.float64) + 0.5) * (bh / h) - 0.5
    xs = (torch.arange(w, dtype=torch.float64) + 0.5) * (bw / w) - 0.5
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    emb = torch.cat([sincos_1d(dim // 2, xx), sincos_1d(dim // 2, yy)], dim=1)
    return emb.float()


def resample_learned(
    pos_embed: torch.Tensor, new_grid: tuple[int, int], old_grid: tuple[int, int], prefix: int = 1
) -> torch.Tensor:
    """Bicubic resampling of ``[1, prefix + H*W, C]`` to a new grid (timm's implementation)."""
    if tuple(new_grid) == tuple(old_grid):
        return pos_embed
    return resample_abs_pos_embed(
        pos_embed, list(new_grid), list(old_grid), num_prefix_tokens=prefix, antialias=True
    )
