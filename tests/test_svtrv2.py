"""SVTRv2 encoder: registered layouts, token grids, local vs global mixing, gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ocrkit.models.backbones import BACKBONES, build_backbone
from ocrkit.models.backbones.svtrv2 import GlobalMixer, LocalMixer, SVTRv2

TINY = {"dims": [16, 24, 32], "num_heads": [2, 2, 4], "depths": [1, 2, 1]}


def mixers_of(model: SVTRv2) -> list[list[str]]:
    return [[block.mixer_type for block in stage] for stage in model.stages]


@pytest.mark.parametrize(
    ("name", "depths", "mixers"),
    [
        (
            "svtrv2_small",
            [3, 6, 3],
            [["local"] * 3, ["local"] * 3 + ["global"] * 3, ["global"] * 3],
        ),
        ("svtrv2_base", [6, 6, 6], [["local"] * 6, ["local"] * 2 + ["global"] * 4, ["global"] * 6]),
    ],
)
def test_registered_layouts(name: str, depths: list[int], mixers: list[list[str]]) -> None:
    model = BACKBONES.build(name)
    assert [len(s) for s in model.stages] == depths and mixers_of(model) == mixers
    assert model.num_features == 384 and model.has_cls is False
    widths = [stage[0].norm1.normalized_shape[0] for stage in model.stages]
    heads = [
        b.mixer.num_heads if isinstance(b.mixer, GlobalMixer) else b.mixer.convs[0].groups
        for b in (stage[0] for stage in model.stages)
    ]
    assert widths == [128, 256, 384] and heads == [4, 8, 12]
    # stem: two 3x3 stride-2 Conv-BN-GELU layers, 3 -> 64 -> 128 channels
    convs = [m for m in model.stem.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (3, 64, (3, 3), (2, 2)),
        (64, 128, (3, 3), (2, 2)),
    ]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.stem.modules()) == 2
    assert sum(isinstance(m, nn.GELU) for m in model.stem.modules()) == 2
    # between stages: stride (1, 1) then (2, 1)
    assert [d.conv.stride for d in model.downsamples] == [(1, 1), (2, 1)]
    # a local block mixes with two grouped 3x3 convolutions, one group per head
    local = model.stages[0][0].mixer
    assert [(c.kernel_size, c.groups) for c in local.convs] == [((3, 3), 4), ((3, 3), 4)]


def test_small_output_tokens() -> None:
    model = build_backbone("svtrv2_small").eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 32, 128))
    assert out.shape == (1, 4 * 32, 384)  # H/8 x W/4 tokens of width 384


@pytest.mark.parametrize("size", [(32, 128), (16, 64), (64, 256), (32, 100)])
def test_token_grid_follows_the_input(size: tuple[int, int]) -> None:
    model = SVTRv2(**TINY).eval()
    h, w = size
    grid = model.grid_size(h, w)
    assert model(torch.randn(2, 3, h, w)).shape == (2, grid[0] * grid[1], 32)
    if h % 8 == 0 and w % 4 == 0:
        assert grid == (h // 8, w // 4)


def test_local_mixer_sees_a_five_by_five_window() -> None:
    # two stacked 3x3 convolutions: a token depends only on tokens within 2 rows/columns
    torch.manual_seed(0)
    mixer = LocalMixer(8, num_heads=2).eval()
    x = torch.randn(1, 6 * 10, 8)
    base = mixer(x, (6, 10))
    poked = x.clone()
    poked[0, 3 * 10 + 5] += 10.0  # token at row 3, column 5
    changed = (mixer(poked, (6, 10)) - base).abs().sum(-1).view(6, 10) > 1e-6
    rows, cols = torch.nonzero(changed, as_tuple=True)
    assert rows.min() == 1 and rows.max() == 5 and cols.min() == 3 and cols.max() == 7
    # groups: channels of one head never reach another head's channels
    poked = x.clone()
    poked[0, :, :4] += 10.0  # head 0's channels only
    delta = (mixer(poked, (6, 10)) - base).abs()
    assert delta[..., 4:].max() < 1e-6 < delta[..., :4].max()


def test_global_mixer_sees_everything() -> None:
    torch.manual_seed(0)
    mixer = GlobalMixer(8, num_heads=2).eval()
    x = torch.randn(1, 60, 8)
    poked = x.clone()
    poked[0, 0] += 10.0
    assert ((mixer(poked, (6, 10)) - mixer(x, (6, 10))).abs().sum(-1) > 1e-6).all()


def test_gradients_reach_the_stem_and_overrides() -> None:
    model = SVTRv2(**TINY)
    model(torch.randn(2, 3, 32, 64)).sum().backward()
    assert model.stem[0][0].weight.grad.abs().sum() > 0
    # other depths without mixers: the default split (half local in stage 2)
    custom = build_backbone(
        "svtrv2_small", depths=[1, 4, 1], dims=[16, 24, 32], num_heads=[2, 2, 4]
    )
    assert mixers_of(custom) == [["local"], ["local", "local", "global", "global"], ["global"]]
    with pytest.raises(ValueError, match="does not match depth"):
        SVTRv2(**TINY, mixers=[["local"], ["local"], ["global"]])
    with pytest.raises(ValueError, match="mixer must be"):
        SVTRv2(**TINY, mixers=[["conv"], ["local", "global"], ["global"]])
