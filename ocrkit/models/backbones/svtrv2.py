"""SVTRv2 encoder: the image encoder of MDiff4STR-S/B.

Du et al., "SVTRv2: CTC Beats Encoder-Decoder Models in Scene Text Recognition" (ICCV 2025),
§Method (in the layout of MDiff4STR-S/B, AAAI 2026, §Experiments):

- stem: two 3x3 stride-2 Conv-BN-GELU layers (``H/4 x W/4``, width ``dims[0]``);
- three stages of widths 128/256/384 and 4/8/12 heads; a block mixes tokens either *locally*
  (two grouped 3x3 convolutions, one group per head, on the 2D map) or *globally*
  (multi-head self-attention over all tokens), then an MLP; post-norm, as in SVTR;
- between stages a 3x3 convolution + LayerNorm changes the width; after stage 1 with stride
  (1, 1), after stage 2 with stride (2, 1), so a ``32 x 128`` image gives ``4 x 32 = 128``
  tokens (``H/8 * W/4``) of width 384, no [CLS] token.

``svtrv2_small``: depths 3/6/3, mixers LLL / LLLGGG / GGG. ``svtrv2_base``: depths 6/6/6, mixers
LLLLLL / LLGGGG / GGGGGG (the OpenOCR configurations of MDiff4STR-S/B).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp
from torch import nn

from ocrkit.models.weight_init import init_transformer_weights

MIXERS = ("local", "global")
HW = tuple[int, int]


def _to_map(x: torch.Tensor, hw: HW) -> torch.Tensor:
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *hw)


def _to_tokens(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(2).transpose(1, 2)


class ConvBNAct(nn.Sequential):
    """3x3 stride-2 convolution, BatchNorm, GELU (one stem layer)."""

    def __init__(self, in_chans: int, out_chans: int) -> None:
        super().__init__(
            nn.Conv2d(in_chans, out_chans, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(out_chans),
            nn.GELU(),
        )


class LocalMixer(nn.Module):
    """Grouped 3x3 convolutions (one group per head) on the token map."""

    def __init__(self, dim: int, num_heads: int, num_convs: int = 2, kernel: int = 3) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            *[
                nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=num_heads)
                for _ in range(num_convs)
            ]
        )

    def forward(self, x: torch.Tensor, hw: HW) -> torch.Tensor:
        return _to_tokens(self.convs(_to_map(x, hw)))


class GlobalMixer(nn.Module):
    """Multi-head self-attention over all tokens."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = attn_drop

    def forward(self, x: torch.Tensor, hw: HW) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        p = self.attn_drop if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class SVTRBlock(nn.Module):
    """``x = norm1(x + mixer(x)); x = norm2(x + mlp(x))`` on tokens ``[B, H*W, C]``."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mixer: str,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        num_convs: int = 2,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        if mixer not in MIXERS:
            raise ValueError(f"SVTRv2 mixer must be one of {MIXERS}, got {mixer!r}")
        self.mixer_type = mixer
        self.mixer = (
            LocalMixer(dim, num_heads, num_convs)
            if mixer == "local"
            else GlobalMixer(dim, num_heads, qkv_bias, attn_drop)
        )
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, hw: HW) -> torch.Tensor:
        x = self.norm1(x + self.drop_path(self.mixer(x, hw)))
        return self.norm2(x + self.drop_path(self.mlp(x)))


class Downsample(nn.Module):
    """3x3 convolution with ``stride`` to the next stage's width, then LayerNorm."""

    def __init__(self, in_dim: int, out_dim: int, stride: Sequence[int]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_dim, out_dim, 3, stride=tuple(stride), padding=1)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor, hw: HW) -> tuple[torch.Tensor, HW]:
        y = self.conv(_to_map(x, hw))
        return self.norm(_to_tokens(y)), (y.shape[2], y.shape[3])


class SVTRv2(nn.Module):
    """SVTRv2 encoder returning tokens ``[B, H/8 * W/4, dims[-1]]`` (no [CLS] token)."""

    has_cls = False

    def __init__(
        self,
        img_size: Sequence[int] = (32, 128),
        in_chans: int = 3,
        dims: Sequence[int] = (128, 256, 384),
        depths: Sequence[int] = (3, 6, 3),
        num_heads: Sequence[int] = (4, 8, 12),
        mixers: Sequence[Sequence[str]] | None = None,
        strides: Sequence[Sequence[int]] = ((1, 1), (2, 1)),
        num_convs: int = 2,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
    ) -> None:
        super().__init__()
        stages = len(depths)
        mixers = mixers or default_mixers(depths)
        if not (len(dims) == len(num_heads) == len(mixers) == stages == len(strides) + 1):
            raise ValueError(
                "SVTRv2: give one dim, head count and mixer list per stage and one stride "
                f"between stages; got dims {dims}, heads {num_heads}, strides {strides}"
            )
        for depth, mixer in zip(depths, mixers):
            if len(mixer) != depth:
                raise ValueError(f"SVTRv2: mixer list {list(mixer)} does not match depth {depth}")
        self.img_size = (int(img_size[0]), int(img_size[1]))
        self.num_features = self.embed_dim = int(dims[-1])
        self.patch_size = None
        self.stem = nn.Sequential(
            ConvBNAct(in_chans, dims[0] // 2), ConvBNAct(dims[0] // 2, dims[0])
        )
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        self.downsamples = nn.ModuleList()
        start = 0
        for i in range(stages):
            self.stages.append(
                nn.ModuleList(
                    SVTRBlock(
                        dims[i],
                        num_heads[i],
                        mixers[i][j],
                        mlp_ratio,
                        qkv_bias,
                        num_convs,
                        drop_rate,
                        attn_drop_rate,
                        dpr[start + j],
                    )
                    for j in range(depths[i])
                )
            )
            start += depths[i]
            if i < stages - 1:
                self.downsamples.append(Downsample(dims[i], dims[i + 1], strides[i]))
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[B, 3, H, W]`` (H divisible by 8, W by 4) -> tokens ``[B, N, C]``."""
        x = self.stem(x)
        hw: HW = (x.shape[2], x.shape[3])
        x = _to_tokens(x)
        for i, blocks in enumerate(self.stages):
            for block in blocks:
                x = block(x, hw)
            if i < len(self.downsamples):
                x, hw = self.downsamples[i](x, hw)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    def grid_size(self, h: int, w: int) -> HW:
        """Token grid of an ``h x w`` image: ``ceil(h / 4), ceil(w / 4)``, then each stride."""
        h, w = -(-h // 4), -(-w // 4)
        for down in self.downsamples:
            sh, sw = down.conv.stride
            h, w = -(-h // sh), -(-w // sw)
        return h, w


def default_mixers(depths: Sequence[int]) -> list[list[str]]:
    """SVTRv2-S style: stage 1 local, stage 2 half local then global, stage 3 global."""
    if len(depths) != 3:
        raise ValueError("SVTRv2: pass mixers explicitly for a layout other than three stages")
    half = depths[1] // 2
    return [
        ["local"] * depths[0],
        ["local"] * half + ["global"] * (depths[1] - half),
        ["global"] * depths[2],
    ]


def _init_weights(module: nn.Module) -> None:
    """The shared transformer init, plus He initialization for the convolutions."""
    init_transformer_weights(module)
    if isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")


SVTRV2_CONFIGS: dict[str, dict] = {
    "svtrv2_small": {
        "depths": [3, 6, 3],
        "mixers": [["local"] * 3, ["local"] * 3 + ["global"] * 3, ["global"] * 3],
    },
    "svtrv2_base": {
        "depths": [6, 6, 6],
        "mixers": [["local"] * 6, ["local"] * 2 + ["global"] * 4, ["global"] * 6],
    },
}


def _build(name: str, kwargs: dict) -> SVTRv2:
    config = dict(SVTRV2_CONFIGS[name])
    if "depths" in kwargs and "mixers" not in kwargs:
        config.pop("mixers")  # other depths: the default local/global split
    return SVTRv2(**{**config, **kwargs})


def svtrv2_small(**kwargs) -> SVTRv2:
    """SVTRv2-S (MDiff4STR-S encoder): depths 3/6/3; kwargs override."""
    return _build("svtrv2_small", kwargs)


def svtrv2_base(**kwargs) -> SVTRv2:
    """SVTRv2-B (MDiff4STR-B encoder): depths 6/6/6; kwargs override."""
    return _build("svtrv2_base", kwargs)
