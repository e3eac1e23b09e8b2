"""A ViT for word images: patch 4 on 32x128 inputs (8x32 = 256 tokens), [CLS] first, pre-norm.

The configuration follows the ViT encoders of the masked-image-modeling STR papers (MAERec, DiG,
MNSP): ViT-Tiny/Small/Base widths with 4x4 patches, so a 32x128 word image becomes an 8x32 grid.
Position embeddings follow any input grid, so one encoder reads 4x16 ... 32x128 images, and a
subset of visible tokens (``ids_keep``) can be encoded for masked modeling without another copy
of this code.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import PatchEmbed, trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

from ocrkit.models.backbones.pos_embed import resample_learned, sincos_2d
from ocrkit.models.weight_init import init_transformer_weights


class TextViT(nn.Module):
    """Vision Transformer encoder returning tokens ``[B, 1 + N, C]`` ([CLS] first)."""

    has_cls = True

    def __init__(
        self,
        img_size: tuple[int, int] = (32, 128),
        patch_size: int = 4,
        in_chans: int = 3,
        embed_dim: int = 384,
        depth: int = 12,
        num_heads: int = 6,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        pos_embed: str = "learned",
        stem: str = "patch",
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if pos_embed not in ("learned", "sincos"):
            raise ValueError(f"pos_embed must be 'learned' or 'sincos', got {pos_embed!r}")
        self.img_size = (int(img_size[0]), int(img_size[1]))
        self.patch_size = patch_size
        self.num_features = self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.pos_embed_type = pos_embed
        self.base_grid = self.grid_size(*self.img_size)

        if stem == "patch":
            self.patch_embed = PatchEmbed(
                img_size=self.img_size,
                patch_size=patch_size,
                in_chans=in_chans,
                embed_dim=embed_dim,
                strict_img_size=False,
            )
        elif stem == "conv":
            self.patch_embed = ConvStem(patch_size, in_chans, embed_dim)
        else:
            raise ValueError(f"stem must be 'patch' or 'conv', got {stem!r}")
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        num_pos = 1 + self.base_grid[0] * self.base_grid[1]
        if pos_embed == "learned":
            self.pos_embed = nn.Parameter(torch.zeros(1, num_pos, embed_dim))
            trunc_normal_(self.pos_embed, std=0.02)
        else:
            # [CLS] gets a zero position, as in MAE; kept in the state dict so a checkpoint
            # trained with fixed sin-cos initializes a "learned" encoder (and vice versa).
            table = torch.cat([torch.zeros(1, embed_dim), sincos_2d(embed_dim, self.base_grid)])
            self.register_buffer("pos_embed", table.unsqueeze(0))
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = torch.linspace(0, drop_path_rate, depth).tolist()
        norm_layer = partial(nn.LayerNorm, eps=1e-6)
        self.blocks = nn.Sequential(
            *[
                Block(
                    dim=embed_dim,
                    num_heads=num_heads,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                    attn_drop=attn_drop_rate,
                    proj_drop=drop_rate,
                    drop_path=dpr[i],
                    norm_layer=norm_layer,
                )
                for i in range(depth)
            ]
        )
        self.norm = norm_layer(embed_dim)
        trunc_normal_(self.cls_token, std=0.02)
        self.apply(init_transformer_weights)

    def no_weight_decay(self) -> set[str]:
        """Own parameters without weight decay (timm ViT, MAE/BEiT fine-tuning)."""
        return {"cls_token", "pos_embed"}

    def grid_size(self, h: int, w: int) -> tuple[int, int]:
        """Patch grid ``(h // p, w // p)`` of an ``h x w`` image."""
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"image {h}x{w} is not divisible by patch size {self.patch_size}")
        return h // self.patch_size, w // self.patch_size

    def pos_embed_for(self, grid: tuple[int, int]) -> torch.Tensor:
        """``[1, 1 + h*w, C]`` position table for a patch grid ([CLS] position first)."""
        if tuple(grid) == self.base_grid:
            return self.pos_embed
        if self.pos_embed_type == "sincos":
            table = sincos_2d(self.embed_dim, grid, self.base_grid).to(self.pos_embed)
            return torch.cat([self.pos_embed[:, :1], table.unsqueeze(0)], dim=1)
        return resample_learned(self.pos_embed, grid, self.base_grid)

    def embed(self, x: torch.Tensor, ids_keep: torch.Tensor | None = None) -> torch.Tensor:
        """Patch-embed, add positions, keep ``ids_keep`` tokens, prepend [CLS]: ``[B, 1+K, C]``.

        With the conv stem the hidden patches are zeroed *before* the stem: its receptive
        fields overlap neighbouring patches, so a visible token would otherwise see the pixels
        masked modeling asks to predict.
        """
        grid = self.grid_size(x.shape[-2], x.shape[-1])
        pos = self.pos_embed_for(grid)
        if ids_keep is not None and isinstance(self.patch_embed, ConvStem):
            x = x * _visible_pixels(ids_keep, grid, self.patch_size).to(x.dtype)
        x = self.patch_embed(x) + pos[:, 1:]
        if ids_keep is not None:
            x = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        cls = (self.cls_token + pos[:, :1]).expand(x.shape[0], -1, -1)
        return self.pos_drop(torch.cat([cls, x], dim=1))

    def forward(
        self,
        x: torch.Tensor,
        ids_keep: torch.Tensor | None = None,
        return_cls: bool = True,
        return_attention: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Encode images ``[B, 3, H, W]`` into tokens ``[B, 1 + K, C]`` (``K = N`` by default).

        ``ids_keep`` (``LongTensor[B, K]``) selects the visible patches (row-major indices on the
        patch grid) for masked modeling. ``return_attention`` also returns the last block's
        attention probabilities ``[B, heads, 1 + K, 1 + K]`` (row = query, column = key).
        """
        x = self.embed(x, ids_keep)
        attn = None
        if return_attention:
            x = self.blocks[:-1](x)
            attn = attention_probs(self.blocks[-1], x)
            x = self.blocks[-1](x)
        else:
            x = self.blocks(x)
        x = self.norm(x)
        if not return_cls:
            x = x[:, 1:]
        return (x, attn) if return_attention else x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """All tokens ``[B, 1 + N, C]`` (timm naming)."""
        return self.forward(x)

    def get_last_attention(
        self, x: torch.Tensor, ids_keep: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Attention probabilities of the last block ``[B, heads, 1 + K, 1 + K]``."""
        x = self.blocks[:-1](self.embed(x, ids_keep))
        return attention_probs(self.blocks[-1], x)


def _visible_pixels(ids_keep: torch.Tensor, grid: tuple[int, int], patch: int) -> torch.Tensor:
    """``[B, 1, H, W]`` mask: 1 on the pixels of the patches in ``ids_keep``, 0 elsewhere."""
    keep = torch.zeros(ids_keep.shape[0], grid[0] * grid[1], device=ids_keep.device)
    keep.scatter_(1, ids_keep, 1.0)
    keep = keep.view(-1, 1, *grid)
    return keep.repeat_interleave(patch, dim=2).repeat_interleave(patch, dim=3)


class ConvStem(nn.Module):
    """Patchify by stride-2 3x3 Conv-BN-GELU layers, then a 1x1 projection: ``[B, N, C]``.

    "Early convolutions help transformers see better" (Xiao et al., NeurIPS 2021): replacing the
    single patchify convolution by a few small convolutions makes a ViT far easier to optimize
    from scratch on little data. Token ``i`` still covers patch ``i`` of the grid (receptive
    fields overlap neighbouring patches; with ``ids_keep`` :meth:`TextViT.embed` zeroes the hidden
    patches first, so masked modeling stays leak-free).
    """

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        levels = patch_size.bit_length() - 1
        if patch_size < 2 or 2**levels != patch_size:
            raise ValueError(f"the conv stem needs a power-of-two patch size, got {patch_size}")
        layers: list[nn.Module] = []
        width = in_chans
        for i in range(levels):
            out = max(16, embed_dim // 2 ** (levels - 1 - i))
            layers += [nn.Conv2d(width, out, 3, 2, 1, bias=False), nn.BatchNorm2d(out), nn.GELU()]
            width = out
        layers.append(nn.Conv2d(width, embed_dim, 1))
        self.proj = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


def attention_probs(block: Block, x: torch.Tensor) -> torch.Tensor:
    """Softmax attention of a timm ``Block`` on its input ``x``, recomputed from its weights.

    timm's fused attention never materializes the probabilities, so they are recomputed here
    from the block's own ``norm1``/``qkv``/``q_norm``/``k_norm`` (same numbers, no code copy of
    the block's forward).
    """
    attn = block.attn
    b, n, _ = x.shape
    qkv = attn.qkv(block.norm1(x)).reshape(b, n, 3, attn.num_heads, attn.head_dim)
    q, k, _ = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    return F.softmax((q * attn.scale) @ k.transpose(-2, -1), dim=-1)


VIT_CONFIGS: dict[str, dict[str, int]] = {
    "vit_tiny": {"embed_dim": 192, "depth": 12, "num_heads": 3},
    "vit_small": {"embed_dim": 384, "depth": 12, "num_heads": 6},
    "vit_base": {"embed_dim": 768, "depth": 12, "num_heads": 12},
}
