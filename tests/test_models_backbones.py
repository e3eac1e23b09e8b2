"""Backbones: token shapes at every MNSP scale, visible-token subsets, attention maps, timm."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ocrkit.models.backbones import BACKBONES, TextViT, build_backbone
from ocrkit.models.backbones.pos_embed import sincos_1d, sincos_2d
from ocrkit.models.backbones.vit import attention_probs

TINY = {"embed_dim": 32, "depth": 2, "num_heads": 2}
SCALES = [(4, 16), (8, 32), (16, 64), (32, 128)]


def tiny_vit(pos_embed: str = "learned") -> TextViT:
    torch.manual_seed(0)
    return BACKBONES.build("vit_small", pos_embed=pos_embed, **TINY).eval()


def mae_sincos(dim: int, h: int, w: int) -> np.ndarray:
    """MAE's get_2d_sincos_pos_embed (util/pos_embed.py), written out independently."""

    def one_d(d: int, pos: np.ndarray) -> np.ndarray:
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    grid = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    return np.concatenate([one_d(dim // 2, grid[0]), one_d(dim // 2, grid[1])], axis=1)


@pytest.mark.parametrize("pos_embed", ["learned", "sincos"])
@pytest.mark.parametrize("size", SCALES)
def test_vit_tokens_at_every_scale(pos_embed: str, size: tuple[int, int]) -> None:
    vit = tiny_vit(pos_embed)
    h, w = size
    out = vit(torch.randn(2, 3, h, w))
    assert vit.grid_size(h, w) == (h // 4, w // 4)
    assert out.shape == (2, 1 + (h // 4) * (w // 4), 32)
    assert vit(torch.randn(2, 3, h, w), return_cls=False).shape[1] == (h // 4) * (w // 4)


@pytest.mark.parametrize(
    ("name", "width", "depth", "heads"),
    [("vit_tiny", 192, 12, 3), ("vit_small", 384, 12, 6), ("vit_base", 768, 12, 12)],
)
def test_registered_vit_sizes(name: str, width: int, depth: int, heads: int) -> None:
    vit = build_backbone(name, depth=1) if name == "vit_base" else build_backbone(name)
    assert vit.num_features == width and vit.num_heads == heads and vit.has_cls
    assert len(vit.blocks) == (1 if name == "vit_base" else depth)
    assert vit.patch_size == 4 and vit.base_grid == (8, 32)
    assert vit.pos_embed.shape == (1, 257, width)


def test_sincos_matches_mae_at_base_grid() -> None:
    vit = tiny_vit("sincos")
    expected = torch.from_numpy(mae_sincos(32, 8, 32)).float()
    torch.testing.assert_close(vit.pos_embed[0, 1:], expected)
    assert torch.equal(vit.pos_embed[0, 0], torch.zeros(32))  # [CLS] position is zero (MAE)


def test_sincos_other_grids_sample_patch_centres_in_base_units() -> None:
    def code(x: float, y: float) -> torch.Tensor:
        return torch.cat([sincos_1d(16, torch.tensor([x])), sincos_1d(16, torch.tensor([y]))], 1)

    # 4x16 grid: coarse patch (0, 0) covers base cells 0..1 -> centre 0.5 in base units
    coarse = sincos_2d(32, (4, 16), (8, 32)).reshape(4, 16, 32)
    torch.testing.assert_close(coarse[0, 0], code(0.5, 0.5)[0].float())
    torch.testing.assert_close(coarse[1, 3], code(6.5, 2.5)[0].float())
    # 16x64 grid: fine patch (1, 1) is the lower-right quarter of base cell (0, 0)
    fine = sincos_2d(32, (16, 64), (8, 32)).reshape(16, 64, 32)
    torch.testing.assert_close(fine[1, 1], code(0.25, 0.25)[0].float())


def test_learned_pos_embed_is_resampled_only_off_grid() -> None:
    vit = tiny_vit("learned")
    assert vit.pos_embed_for((8, 32)) is vit.pos_embed
    assert vit.pos_embed_for((4, 16)).shape == (1, 1 + 64, 32)
    torch.testing.assert_close(vit.pos_embed_for((4, 16))[:, 0], vit.pos_embed[:, 0])


def test_visible_subset_equals_gathered_tokens() -> None:
    vit = tiny_vit()
    x = torch.randn(2, 3, 32, 128)
    ids_keep = torch.stack([torch.randperm(256)[:64] for _ in range(2)])
    full = vit.embed(x)
    kept = vit.embed(x, ids_keep)
    assert kept.shape == (2, 65, 32)
    expected = torch.gather(full[:, 1:], 1, ids_keep[..., None].expand(-1, -1, 32))
    assert torch.equal(kept[:, 1:], expected)
    assert torch.equal(kept[:, 0], full[:, 0])
    assert vit(x, ids_keep).shape == (2, 65, 32)


def test_all_indices_kept_equals_full_path() -> None:
    vit = tiny_vit()
    x = torch.randn(2, 3, 32, 128)
    ids_all = torch.arange(256).expand(2, -1)
    assert torch.equal(vit(x, ids_all), vit(x))


def test_last_attention_is_the_attention_the_block_uses() -> None:
    vit = tiny_vit()
    x = torch.randn(2, 3, 16, 64)
    tokens, attn = vit(x, return_attention=True)
    assert torch.equal(tokens, vit(x))
    assert attn.shape == (2, 2, 65, 65)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 2, 65))
    torch.testing.assert_close(vit.get_last_attention(x), attn)
    # rebuild the block's attention output from the maps: probs @ V, then the projection
    block = vit.blocks[-1]
    h = vit.blocks[:-1](vit.embed(x))
    b, n, c = h.shape
    qkv = block.attn.qkv(block.norm1(h)).reshape(b, n, 3, 2, c // 2).permute(2, 0, 3, 1, 4)
    mixed = (attention_probs(block, h) @ qkv[2]).transpose(1, 2).reshape(b, n, c)
    torch.testing.assert_close(block.attn.proj(mixed), block.attn(block.norm1(h)))


def test_vit_gradients_reach_patch_embedding() -> None:
    vit = tiny_vit().train()
    vit(torch.randn(2, 3, 32, 128)).sum().backward()
    assert vit.patch_embed.proj.weight.grad.abs().sum() > 0
    assert vit.pos_embed.grad.abs().sum() > 0


def test_timm_cnn_feature_map_is_flattened() -> None:
    net = build_backbone("timm:resnet18").eval()
    assert net.num_features == 512 and not net.has_cls
    assert net(torch.randn(2, 3, 32, 128)).shape == (2, 1 * 4, 512)  # stride 32


def test_timm_vit_with_tiny_kwargs() -> None:
    net = build_backbone("timm:vit_tiny_patch16_224", depth=1, patch_size=8).eval()
    assert net.has_cls and net.num_features == 192
    assert net(torch.randn(1, 3, 32, 128)).shape == (1, 1 + 4 * 16, 192)


def test_timm_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="timm has no model"):
        build_backbone("timm:not_a_model_xyz")
