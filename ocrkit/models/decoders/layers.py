"""Pre-norm transformer decoder layer with a key/value cache for step-by-step decoding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import Mlp
from torch import nn

Cache = dict[str, torch.Tensor]


class MultiHeadAttention(nn.Module):
    """Multi-head attention (scaled dot product) whose keys/values can be cached."""

    def __init__(self, dim: int, num_heads: int, kv_dim: int | None = None, dropout: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(kv_dim or dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout

    def split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.reshape(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.kv(x).chunk(2, dim=-1)
        return self.split(k), self.split(v)

    def attend(
        self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False
    ) -> torch.Tensor:
        q = self.split(self.q(x))
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=causal)
        b, _, n, _ = out.shape
        return self.proj(out.transpose(1, 2).reshape(b, n, -1))


class DecoderLayer(nn.Module):
    """Pre-norm: causal self-attention, cross-attention to the image tokens, MLP."""

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float = 4.0, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.self_attn = MultiHeadAttention(dim, num_heads, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.cross_attn = MultiHeadAttention(dim, num_heads, dropout=dropout)
        self.norm3 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=dropout)
        self.drop = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, cache: Cache | None = None
    ) -> torch.Tensor:
        """``x [B, T, D]`` attends causally to itself and fully to ``memory [B, S, D]``.

        With ``cache`` (a dict this layer fills), ``x`` holds only the new positions: their keys
        and values are appended to the cached ones, and the memory's keys/values are computed
        once. Without it, ``x`` is the whole prefix and a causal mask is applied.
        """
        h = self.norm1(x)
        k, v = self.self_attn.keys_values(h)
        if cache is not None:
            if "k" in cache:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        # Without a cache x is the whole prefix: always causal (a plain bool, so exporters never
        # trace it; over one position the mask changes nothing). With a cache, one new position
        # attends to everything cached; a multi-position prefill must start from an empty cache.
        causal = cache is None or bool(x.shape[1] > 1)
        if causal and k.shape[2] != x.shape[1]:
            raise ValueError("cached decoding feeds one new position per step")
        x = x + self.drop(self.self_attn.attend(h, k, v, causal=causal))
        if cache is not None and "mem_k" in cache:
            mk, mv = cache["mem_k"], cache["mem_v"]
        else:
            mk, mv = self.cross_attn.keys_values(memory)
            if cache is not None:
                cache["mem_k"], cache["mem_v"] = mk, mv
        x = x + self.drop(self.cross_attn.attend(self.norm2(x), mk, mv))
        return x + self.drop(self.mlp(self.norm3(x)))
