"""The SVTR necks of PP-OCRv4 and PP-OCRv6: a few global-attention blocks over the pooled row.

The PP-LCNet backbones end in a ``[B, C, 1, T]`` row (after a 3x2 average pool); the neck mixes
it along the width and returns ``[B, T, D]`` tokens for the CTC head (or any ocrkit decoder).

- :class:`SVTRNeck` (PP-OCRv4, PaddleOCR's ``EncoderWithSVTR``): 1x3 conv down to D/2, 1x1 conv
  to D, transformer blocks, 1x1 conv back to C, concatenated with the input, 1x3 conv to D/2 and
  1x1 conv to D. Every conv is conv + batch norm + swish.
- :class:`LightSVTRNeck` (PP-OCRv6 small, ``lightsvtr``): a 1x1 conv to D with a residual 1x7
  depthwise conv (local mixing), transformer blocks, plus a 1x1-conv "guide" path of the input
  added at the end.

The transformer block is SVTR's pre-norm block: multi-head self-attention (8 heads) and a swish
MLP, layer norm eps 1e-5 inside the blocks and 1e-6 after them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBNSwish(nn.Sequential):
    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: tuple[int, int] = (1, 1),
        groups: int = 1,
    ) -> None:
        padding = (kernel[0] // 2, kernel[1] // 2)
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, 1, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch, eps=1e-5),
            nn.SiLU(),
        )


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int = 8) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class SVTRBlock(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))`` (swish)."""

    def __init__(self, dim: int, num_heads: int = 8, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _Blocks(nn.Module):
    """Transformer blocks over a ``[B, D, 1, T]`` map, returned in the same layout."""

    def __init__(self, dim: int, depth: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(SVTRBlock(dim, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens).transpose(1, 2).reshape(b, c, h, w)


def _to_tokens(x: torch.Tensor) -> torch.Tensor:
    """``[B, D, 1, T]`` -> ``[B, T, D]``."""
    return x.squeeze(2).transpose(1, 2)


class SVTRNeck(nn.Module):
    """PP-OCRv4's neck (``EncoderWithSVTR``): ``[B, C, 1, T]`` -> ``[B, T, dims]``."""

    def __init__(
        self,
        in_channels: int,
        dims: int = 120,
        depth: int = 2,
        num_heads: int = 8,
        mlp_ratio: float = 2.0,
    ) -> None:
        super().__init__()
        self.conv1 = ConvBNSwish(in_channels, in_channels // 8, (1, 3))
        self.conv2 = ConvBNSwish(in_channels // 8, dims)
        self.mixer = _Blocks(dims, depth, num_heads, mlp_ratio)
        self.conv3 = ConvBNSwish(dims, in_channels)
        self.conv4 = ConvBNSwish(2 * in_channels, in_channels // 8, (1, 3))
        self.conv1x1 = ConvBNSwish(in_channels // 8, dims)
        self.num_features = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.conv3(self.mixer(self.conv2(self.conv1(x))))
        z = self.conv4(torch.cat([x, z], dim=1))
        return _to_tokens(self.conv1x1(z))


class LightSVTRNeck(nn.Module):
    """PP-OCRv6's neck (``lightsvtr``): ``[B, C, 1, T]`` -> ``[B, T, dims]``."""

    def __init__(
        self,
        in_channels: int,
        dims: int = 120,
        depth: int = 2,
        num_heads: int = 8,
        mlp_ratio: float = 2.0,
        local_kernel: int = 7,
    ) -> None:
        super().__init__()
        self.guide = ConvBNSwish(in_channels, dims)
        self.proj = ConvBNSwish(in_channels, dims)
        self.local = ConvBNSwish(dims, dims, (1, local_kernel), groups=dims)
        self.mixer = _Blocks(dims, depth, num_heads, mlp_ratio)
        self.num_features = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        guide = self.guide(x)
        z = self.proj(x)
        z = z + self.local(z)
        return _to_tokens(self.mixer(z) + guide)
