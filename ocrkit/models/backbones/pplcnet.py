"""PP-LCNet recognition backbones of PP-OCRv4 (PPLCNetV3) and PP-OCRv6 (PPLCNetV4), inference form.

Both networks are trained with re-parameterisable branches (RepVGG style) and batch norms that
PaddleOCR folds into one convolution with a bias before export. These modules hold that folded,
inference form, read from the ONNX graphs in the ``rapidocr`` wheels: every convolution has a
bias, there is no batch norm left in the backbone (except PPLCNetV3's stem), and each module
computes exactly what the exported graph computes. They train as plain convolutional networks.

Both map a ``[B, 3, 48, W]`` crop to a ``[B, C, 3, W/4]`` feature map (height 48 -> 3 by four
stride-2 steps: two in the stem, two stride-(2, 1) depthwise convolutions) that the PP-OCR neck
pools to one row per 8 pixels of width.

- **PPLCNetV3** (PP-OCRv4 mobile, scale 0.95): a conv-BN stem, then 14 depthwise-separable
  blocks (depthwise k x k -> optional squeeze-excitation -> pointwise), each convolution followed
  by a learnable affine block (``y = a x + b``, two scalars), hard-swish, and another affine block.
- **PPLCNetV4** (PP-OCRv6): an HGNet-style stem (two paths, max pool and 2x2 convs, concatenated)
  and RepViT-style blocks: a 3x3 depthwise token mixer, squeeze-excitation on every other block,
  and a residual 1x1-GELU-1x1 channel mixer; a stride-(2, 1) depthwise conv plus a
  1x1-GELU-1x1 projection (no residual) opens each wider stage.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class SqueezeExcite(nn.Module):
    """Global average pool -> 1x1 reduce -> ReLU -> 1x1 expand -> hard-sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, channels // reduction, 1)
        self.expand = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.expand(F.relu(self.reduce(x.mean(dim=(2, 3), keepdim=True))))
        return x * F.hardsigmoid(gate)


# ---- PPLCNetV3 (PP-OCRv4) ----------------------------------------------------------------------


class AffineScalar(nn.Module):
    """PaddleOCR's learnable affine block: ``scale * x + bias`` with two learned scalars."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x + self.bias


class ConvAct(nn.Module):
    """Folded convolution -> affine -> hard-swish -> affine (one PPLCNetV3 layer)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int | tuple[int, int] = 1,
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups)
        self.lab = AffineScalar()
        self.act_lab = AffineScalar()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act_lab(F.hardswish(self.lab(self.conv(x))))


class DepthwiseSeparable(nn.Module):
    """Depthwise k x k (ConvAct) -> optional squeeze-excitation -> pointwise (ConvAct)."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, stride: tuple[int, int], se: bool
    ) -> None:
        super().__init__()
        self.dw = ConvAct(in_ch, in_ch, kernel, stride, groups=in_ch)
        self.se = SqueezeExcite(in_ch) if se else nn.Identity()
        self.pw = ConvAct(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.se(self.dw(x)))


# (kernel, in, out, stride, se) at scale 1.0; PP-OCRv4 mobile uses scale 0.95.
LCNETV3_BLOCKS: tuple[tuple[int, int, int, tuple[int, int], bool], ...] = (
    (3, 16, 32, (1, 1), False),
    (3, 32, 64, (1, 1), False),
    (3, 64, 64, (1, 1), False),
    (3, 64, 128, (2, 1), False),
    (3, 128, 128, (1, 1), False),
    (3, 128, 256, (1, 2), False),
    (5, 256, 256, (1, 1), False),
    (5, 256, 256, (1, 1), False),
    (5, 256, 256, (1, 1), False),
    (5, 256, 256, (1, 1), False),
    (5, 256, 512, (2, 1), True),
    (5, 512, 512, (1, 1), True),
    (5, 512, 512, (2, 1), False),
    (5, 512, 512, (1, 1), False),
)


def _scaled(channels: int, scale: float, divisor: int = 16) -> int:
    """PaddleOCR's ``make_divisible``: round ``channels * scale`` to a multiple of ``divisor``."""
    value = channels * scale
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


class PPLCNetV3(nn.Module):
    """PP-OCRv4's recognition backbone: ``[B, 3, 48, W]`` -> ``[B, C, 3, W/4]``."""

    def __init__(self, scale: float = 0.95) -> None:
        super().__init__()
        stem = _scaled(16, scale)
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem, eps=1e-5)
        )
        blocks = []
        for kernel, cin, cout, stride, se in LCNETV3_BLOCKS:
            blocks.append(
                DepthwiseSeparable(_scaled(cin, scale), _scaled(cout, scale), kernel, stride, se)
            )
        self.blocks = nn.Sequential(*blocks)
        self.num_features = _scaled(LCNETV3_BLOCKS[-1][2], scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


# ---- PPLCNetV4 (PP-OCRv6) ----------------------------------------------------------------------


class ConvReLU(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> None:
        super().__init__(nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2), nn.ReLU())


class SamePad2x2(nn.Module):
    """TensorFlow/Paddle ``SAME`` padding for a 2x2 stride-1 window: one pixel right and below."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (0, 1, 0, 1))


class HGStem(nn.Module):
    """3x3/2 conv; then a 2x2 max pool beside two 2x2 convs, concatenated; 3x3/2 conv; 1x1 conv."""

    def __init__(self, mid: int, out: int) -> None:
        super().__init__()
        self.stem1 = ConvReLU(3, mid, 3, 2)
        self.stem2a = nn.Sequential(SamePad2x2(), nn.Conv2d(mid, mid // 2, 2), nn.ReLU())
        self.stem2b = nn.Sequential(SamePad2x2(), nn.Conv2d(mid // 2, mid, 2), nn.ReLU())
        self.pool = nn.Sequential(SamePad2x2(), nn.MaxPool2d(2, 1))
        self.stem3 = ConvReLU(2 * mid, mid, 3, 2)
        self.stem4 = ConvReLU(mid, out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem1(x)
        # SAME padding of a max pool pads with -inf; x >= 0 after ReLU, so zeros are equivalent.
        x = torch.cat([self.pool(x), self.stem2b(self.stem2a(x))], dim=1)
        return self.stem4(self.stem3(x))


class ChannelMixer(nn.Sequential):
    """1x1 conv -> GELU (erf) -> 1x1 conv."""

    def __init__(self, in_ch: int, hidden: int, out_ch: int) -> None:
        super().__init__(nn.Conv2d(in_ch, hidden, 1), nn.GELU(), nn.Conv2d(hidden, out_ch, 1))


class RepViTBlock(nn.Module):
    """Folded 3x3 depthwise token mixer (+ SE), then a residual channel mixer (ratio 2)."""

    def __init__(self, channels: int, se: bool, mlp_ratio: int = 2) -> None:
        super().__init__()
        self.token_mixer = nn.Conv2d(channels, channels, 3, 1, 1, groups=channels)
        self.se = SqueezeExcite(channels) if se else nn.Identity()
        self.channel_mixer = ChannelMixer(channels, channels * mlp_ratio, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.se(self.token_mixer(x))
        return x + self.channel_mixer(x)


class RepViTDownsample(nn.Module):
    """Stride-(2, 1) 3x3 depthwise conv, then a 1x1-GELU-1x1 projection to the wider stage."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.token_mixer = nn.Conv2d(in_ch, in_ch, 3, (2, 1), 1, groups=in_ch)
        self.channel_mixer = ChannelMixer(in_ch, out_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.channel_mixer(self.token_mixer(x))


# PP-OCRv6 small: stem (48 -> 96), stages of (channels, SE flag per block).
LCNETV4_SMALL: dict[str, object] = {
    "stem": (48, 96),
    "stages": (
        (96, (True, False, False)),
        (192, (True, False, True, False, True, False)),
        (384, (True, False)),
    ),
}


class PPLCNetV4(nn.Module):
    """PP-OCRv6's recognition backbone: ``[B, 3, 48, W]`` -> ``[B, C, 3, W/4]``."""

    def __init__(
        self,
        stem: Sequence[int] = (48, 96),
        stages: Sequence[tuple[int, Sequence[bool]]] = LCNETV4_SMALL["stages"],  # type: ignore[assignment]
    ) -> None:
        super().__init__()
        self.stem = HGStem(int(stem[0]), int(stem[1]))
        layers: list[nn.Module] = []
        channels = int(stem[1])
        for width, se_flags in stages:
            if width != channels:
                layers.append(RepViTDownsample(channels, int(width)))
                channels = int(width)
            layers.extend(RepViTBlock(channels, bool(se)) for se in se_flags)
        self.blocks = nn.Sequential(*layers)
        self.num_features = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))
