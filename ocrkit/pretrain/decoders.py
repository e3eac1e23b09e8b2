"""The light decoders of masked and next-scale prediction.

* :class:`GuidedBlock`: pre-norm self-attention -> optional cross-attention -> MLP.
* :class:`MaskedDecoder`: MAE's decoder (visible tokens + mask tokens + fixed 2D sin-cos
  positions), whose blocks may cross-attend to guidance memories -- MNSP's MIM branch, where
  block 1 reads ``E(s_k)`` and block 2 reads ``D_nsp(F)``.
* :class:`NSPDecoder`: MNSP's ``D_nsp``: the upsampled tokens ``F`` attend to themselves and to
  ``E(s_k)``, and a linear head maps them to the target (teacher features or pixels).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from timm.layers import Mlp
from torch import nn

from ocrkit.models.backbones.pos_embed import sincos_2d
from ocrkit.models.decoders.layers import MultiHeadAttention
from ocrkit.models.weight_init import init_transformer_weights
from ocrkit.pretrain.masking import Masking, unshuffle

LayerNorm = partial(nn.LayerNorm, eps=1e-6)


class GuidedBlock(nn.Module):
    """Pre-norm transformer block: self-attention, cross-attention to ``memory``, MLP.

    ``memory_dim=None`` builds no cross-attention (a plain ViT block); otherwise the keys and
    values come from a memory ``[B, S, memory_dim]`` of any length.
    """

    def __init__(
        self, dim: int, num_heads: int, memory_dim: int | None = None, mlp_ratio: float = 4.0
    ) -> None:
        super().__init__()
        self.norm1 = LayerNorm(dim)
        self.self_attn = MultiHeadAttention(dim, num_heads)
        self.memory_dim = memory_dim
        if memory_dim is not None:
            self.norm2 = LayerNorm(dim)
            self.cross_attn = MultiHeadAttention(dim, num_heads, kv_dim=memory_dim)
        self.norm3 = LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        if (memory is None) != (self.memory_dim is None):
            state = "has no" if self.memory_dim is None else "needs a"
            raise ValueError(f"this block {state} cross-attention memory")
        h = self.norm1(x)
        x = x + self.self_attn.attend(h, *self.self_attn.keys_values(h))
        if memory is not None:
            x = x + self.cross_attn.attend(self.norm2(x), *self.cross_attn.keys_values(memory))
        return x + self.mlp(self.norm3(x))


def grid_positions(
    dim: int, grid: Sequence[int], base_grid: Sequence[int], like: torch.Tensor
) -> torch.Tensor:
    """Fixed 2D sin-cos positions ``[1, h*w, dim]`` of a patch grid (in base-grid units)."""
    table = sincos_2d(dim, (int(grid[0]), int(grid[1])), (int(base_grid[0]), int(base_grid[1])))
    return table.to(device=like.device, dtype=like.dtype).unsqueeze(0)


class MaskedDecoder(nn.Module):
    """MAE decoder: ``[CLS] + visible`` encoder tokens -> predictions for every patch.

    ``memory_dims[i]`` is the width of the memory block ``i`` cross-attends to (``None``: no
    cross-attention). With no memories this is exactly MAE's decoder design (pre-norm ViT
    blocks at width ``dim``).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        dim: int = 512,
        depth: int = 8,
        num_heads: int = 16,
        memory_dims: Sequence[int | None] = (),
        mlp_ratio: float = 4.0,
        base_grid: Sequence[int] = (8, 32),
    ) -> None:
        super().__init__()
        if len(memory_dims) > depth:
            raise ValueError(f"{len(memory_dims)} memories for a decoder of depth {depth}")
        dims = list(memory_dims) + [None] * (depth - len(memory_dims))
        self.dim, self.base_grid = dim, tuple(base_grid)
        self.embed = nn.Linear(in_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.ModuleList(GuidedBlock(dim, num_heads, m, mlp_ratio) for m in dims)
        self.norm = LayerNorm(dim)
        self.head = nn.Linear(dim, out_dim)
        self.apply(init_transformer_weights)
        nn.init.normal_(self.mask_token, std=0.02)

    def no_weight_decay(self) -> set[str]:
        """Own parameters without weight decay (BEiT/SimMIM exclude the mask token)."""
        return {"mask_token"}

    def forward(
        self,
        tokens: torch.Tensor,
        masking: Masking,
        grid: Sequence[int],
        memories: Sequence[torch.Tensor | None] = (),
    ) -> torch.Tensor:
        """``tokens [B, 1 + K, C]`` ([CLS] first) -> predictions ``[B, N, out_dim]`` (grid order)."""
        x = self.embed(tokens)
        patches = unshuffle(x[:, 1:], self.mask_token, masking)
        patches = patches + grid_positions(self.dim, grid, self.base_grid, patches)
        x = torch.cat([x[:, :1], patches], dim=1)  # [CLS] keeps MAE's zero position
        memories = list(memories) + [None] * (len(self.blocks) - len(memories))
        for block, memory in zip(self.blocks, memories, strict=True):
            x = block(x, memory)
        return self.head(self.norm(x))[:, 1:]


class NSPDecoder(nn.Module):
    """``D_nsp``: ``depth`` blocks of self-attention -> cross-attention to ``E(s_k)`` -> MLP.

    The input is ``F``, the ``s_k`` patch tokens bicubically upsampled to the ``s_k+1`` grid
    (:func:`ocrkit.pretrain.views.upsample_tokens`), plus fixed sin-cos positions of that grid;
    the output ``[B, N(s_k+1), out_dim]`` is compared with the teacher's ``s_k+1`` tokens.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        dim: int | None = None,
        depth: int = 2,
        num_heads: int = 6,
        mlp_ratio: float = 4.0,
        base_grid: Sequence[int] = (8, 32),
    ) -> None:
        super().__init__()
        self.dim, self.base_grid = dim or in_dim, tuple(base_grid)
        self.embed = nn.Linear(in_dim, self.dim) if self.dim != in_dim else nn.Identity()
        self.blocks = nn.ModuleList(
            GuidedBlock(self.dim, num_heads, in_dim, mlp_ratio) for _ in range(depth)
        )
        self.norm = LayerNorm(self.dim)
        self.head = nn.Linear(self.dim, out_dim)
        self.apply(init_transformer_weights)

    def forward(
        self, upsampled: torch.Tensor, grid: Sequence[int], memory: torch.Tensor
    ) -> torch.Tensor:
        """``upsampled [B, N1, C]`` on ``grid``, ``memory = E(s_k) [B, N0, C]`` -> ``[B, N1, out]``."""
        x = self.embed(upsampled)
        x = x + grid_positions(self.dim, grid, self.base_grid, x)
        for block in self.blocks:
            x = block(x, memory)
        return self.head(self.norm(x))
