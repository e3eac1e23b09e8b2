"""CQMD head: shapes, batching, the mask loss, and causality (dS/dH_a = 0)."""

from __future__ import annotations

import pytest
import torch

from ocrkit.anchoring.cqmd import CQMDConfig, CQMDHead, dice_loss, gather_positions, mask_loss

D = 16


def head(**kw) -> CQMDHead:
    torch.manual_seed(0)
    return CQMDHead(CQMDConfig(hidden_size=D, channels=8, min_channels=4, **kw))


def layout():
    """Two samples: sample 0 has one 2x3-token image, sample 1 a 2x2 and a 1x2 image."""
    # positions: sample 0 -> image 0..5, query 6..8, answer 9..11
    #            sample 1 -> image 0..3, text 4, image 5..6, query 7..8, answer 9..10, pad 11
    L = 12
    image = torch.zeros(2, L, dtype=torch.bool)
    query = torch.zeros(2, L, dtype=torch.bool)
    image[0, 0:6] = True
    query[0, 6:9] = True
    image[1, 0:4] = True
    image[1, 5:7] = True
    query[1, 7:9] = True
    grid = torch.tensor([[1, 4, 6], [1, 4, 4], [1, 2, 4]])  # merge 2 -> (2,3), (2,2), (1,2)
    answer = torch.zeros(2, L, dtype=torch.bool)
    answer[0, 9:12] = True
    answer[1, 9:11] = True
    return image, query, answer, grid


def test_shapes_one_map_per_image_at_factor_resolution() -> None:
    image, query, _, grid = layout()
    out = head(upsample_stages=2)(torch.randn(2, 12, D), image, query, grid, 2)
    assert [tuple(m.shape) for m in out] == [(8, 12), (8, 8), (4, 8)]


def test_gather_positions_left_aligns_in_order() -> None:
    hidden = torch.arange(2 * 5, dtype=torch.float).view(2, 5, 1)
    where = torch.tensor([[False, True, False, True, True], [True, False, False, False, False]])
    picked, valid = gather_positions(hidden, where)
    assert picked[0, :, 0].tolist() == [1, 3, 4]
    assert picked[1, 0, 0].item() == 5 and valid.tolist() == [[True] * 3, [True, False, False]]


def test_batched_equals_one_by_one() -> None:
    image, query, _, grid = layout()
    h = head()
    hidden = torch.randn(2, 12, D)
    both = h(hidden, image, query, grid, 2)
    first = h(hidden[:1], image[:1], query[:1], grid[:1], 2)
    second = h(hidden[1:], image[1:], query[1:], grid[1:], 2)
    for a, b in zip(both, first + second):
        torch.testing.assert_close(a, b)


def test_mask_has_no_gradient_path_to_answer_tokens() -> None:
    image, query, answer, grid = layout()
    hidden = torch.randn(2, 12, D, requires_grad=True)
    out = head()(hidden, image, query, grid, 2)
    sum(m.sum() for m in out).backward()
    g = hidden.grad.abs().sum(-1)
    assert g[answer].eq(0).all()  # dS/dH_a = 0 exactly
    assert g[query].gt(0).all() and g[image].gt(0).all()  # the query and image states do matter


def test_mismatched_grid_is_a_clear_error() -> None:
    image, query, _, grid = layout()
    with pytest.raises(ValueError, match="image_grid_thw"):
        head()(torch.randn(2, 12, D), image, query, grid[:2], 2)
    with pytest.raises(ValueError, match="query token"):
        head()(torch.randn(2, 12, D), image, torch.zeros_like(query), grid, 2)


def test_dice_loss_hand_worked() -> None:
    big = torch.tensor([[20.0, -20.0], [20.0, -20.0]])  # p = [1, 0, 1, 0]
    target = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    # 1 - (2*1 + 1) / (2 + 1 + 1) = 0.25
    assert dice_loss(big, target).item() == pytest.approx(0.25, abs=1e-6)
    assert dice_loss(big, torch.tensor([[1.0, 0.0], [1.0, 0.0]])).item() == pytest.approx(
        0.0, abs=1e-6
    )


def test_mask_loss_is_dice_plus_bce_and_skips_samples_without_mask() -> None:
    logits = [torch.zeros(2, 2, requires_grad=True), torch.zeros(3, 3, requires_grad=True)]
    target = torch.tensor([[255, 0], [0, 0]], dtype=torch.uint8)  # uint8 masks are /255
    out = mask_loss(logits, [target, None])
    bce = torch.log(torch.tensor(2.0))  # p = 0.5 everywhere
    dice = 1 - (2 * 0.5 + 1) / (2.0 + 1 + 1)
    assert out["loss_mask"].item() == pytest.approx(bce.item() + dice, abs=1e-6)
    assert out["masked_images"].item() == 1
    none = mask_loss(logits, [None, None])
    assert none["loss_mask"].item() == 0 and none["loss_mask"].requires_grad


def test_target_is_area_resized_to_the_logits() -> None:
    logits = [torch.zeros(2, 2)]
    target = torch.zeros(4, 4)
    target[:2, :2] = 1.0  # exactly the top-left logit cell
    out = mask_loss([torch.tensor([[30.0, -30.0], [-30.0, -30.0]])], [target])
    assert out["dice"].item() == pytest.approx(1.0, abs=1e-4)
    assert mask_loss(logits, [target])["dice"].item() < 0.5


def _numel(config: CQMDConfig) -> int:
    with torch.device("meta"):  # no memory: 154M parameters would take 0.6 GB
        return sum(p.numel() for p in CQMDHead(config).parameters())


def test_paper_head_size_at_qwen25_vl_3b_width() -> None:
    from ocrkit.anchoring.cqmd import PAPER_PARAMS, count_parameters

    cfg = CQMDConfig(hidden_size=2048)  # the default size: "paper"
    assert cfg.size == "paper" and cfg.dims == (2048, 32000, 2048)  # S in R^{n x d} (Eq. 5)
    # by hand: W_q, W_k, W_v; W1, b1; W2, b2; two (ConvT k2 + LayerNorm2d) stages; 1x1 conv
    attn = 3 * 2048 * 2048
    mlp = (2048 * 32000 + 32000) + (32000 * 2048 + 2048)
    up = (2048 * 1024 * 4 + 1024 + 2 * 1024) + (1024 * 512 * 4 + 512 + 2 * 512) + (512 + 1)
    assert attn + mlp + up == 154_179_841
    assert _numel(cfg) == count_parameters(cfg) == 154_179_841
    assert abs(154_179_841 / PAPER_PARAMS - 1) < 0.01  # Sec. 5.1: 153.76M, within 1%


def test_small_head_size_stays_named() -> None:
    from ocrkit.anchoring.cqmd import count_parameters

    small = CQMDConfig(hidden_size=2048, size="small")
    assert small.dims == (2048, 2048, 256)
    # 3 d^2 + (d^2 + d) + (256 d + 256) + ConvT 256->128 + LN + ConvT 128->64 + LN + 64->1
    by_hand = 3 * 2048**2 + 2048**2 + 2048 + 256 * 2048 + 256
    by_hand += (256 * 128 * 4 + 128 + 256) + (128 * 64 * 4 + 64 + 128) + 65
    assert _numel(small) == count_parameters(small) == by_hand == 17_468_289
    # the tiny test VLMs (hidden 64): paper 153,865, small 197,569 (its S is 256 wide)
    assert _numel(CQMDConfig(hidden_size=64)) == 153_865
    assert _numel(CQMDConfig(hidden_size=64, size="small")) == 197_569
    # explicit fields win over the size's values
    assert CQMDConfig(hidden_size=64, channels=8).dims == (64, 1000, 8)
    with pytest.raises(ValueError, match="paper, small"):
        CQMDConfig(hidden_size=64, size="huge")
