"""MDiff4STR training noise: the six strategies on hand-worked labels, fallbacks, batching,
token-replacement statistics and the loss normalization."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from ocrkit.models.decoders.mdiff import loss as losses
from ocrkit.models.decoders.mdiff.noise import (
    NOISE_STRATEGIES,
    STRATEGIES,
    block_mask,
    cloze_mask,
    full_mask,
    left_to_right_mask,
    mask_noise,
    random_mask,
    replace_tokens,
    right_to_left_mask,
)
from ocrkit.text import Charset, Tokenizer

T, F = True, False


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def as_list(mask: torch.Tensor) -> list[bool]:
    return mask.tolist()


def test_hand_worked_masks() -> None:
    # "cat" + EOS: L' = 4
    assert as_list(full_mask(4)) == [T, T, T, T]
    assert as_list(left_to_right_mask(4, visible=1)) == [F, T, T, T]
    assert as_list(left_to_right_mask(4, visible=3)) == [F, F, F, T]  # only EOS to predict
    assert as_list(right_to_left_mask(4, masked=1)) == [T, F, F, F]
    assert as_list(right_to_left_mask(4, masked=3)) == [T, T, T, F]
    assert as_list(cloze_mask(4, position=3)) == [F, F, F, T]
    assert as_list(cloze_mask(4, position=0)) == [T, F, F, F]
    # random with p = 0 still masks exactly one token; p = 1 masks all
    for seed in range(20):
        assert int(random_mask(4, gen(seed), p=0.0).sum()) == 1
        assert as_list(random_mask(4, gen(seed), p=1.0)) == [T, T, T, T]


def test_block_mask_hand_worked() -> None:
    # L' = 13 ("scenetextrec" + EOS? 12 chars + EOS): r = 5 -> b = 2, 13 % 5 = 3 -> r = 6;
    # k = 3 -> the first b (k - 1) = 4 tokens visible
    assert as_list(block_mask(13, blocks=5, k=3)) == [F] * 4 + [T] * 9
    assert as_list(block_mask(13, blocks=5, k=6)) == [F] * 10 + [T] * 3
    # L' = 6: r = 2 -> b = 3, no remainder, r == 2 -> everything masked
    assert as_list(block_mask(6, blocks=2)) == [T] * 6
    # L' = 7: r = 2 -> b = 3, 7 % 2 = 1 -> r = 3, k = 3 -> 6 visible
    assert as_list(block_mask(7, blocks=2, k=3)) == [F] * 6 + [T]
    assert as_list(block_mask(7, blocks=2, k=2)) == [F] * 3 + [T] * 4
    with pytest.raises(ValueError, match="k must be"):
        block_mask(7, blocks=2, k=4)


def test_block_mask_draws_whole_blocks() -> None:
    # L' = 12, r = 6 -> b = 2: visible prefixes 2, 4, 6, 8, 10 (k = 2..6), all reached
    seen = set()
    for seed in range(200):
        mask = block_mask(12, gen(seed), blocks=6)
        visible = int((~mask).sum())
        assert as_list(mask) == [F] * visible + [T] * (12 - visible)
        seen.add(visible)
    assert seen == {2, 4, 6, 8, 10}


@pytest.mark.parametrize(("length", "blocks"), [(6, 4), (6, 6), (4, 6), (3, 3)])
def test_block_mask_with_one_token_blocks_uses_a_direction(length: int, blocks: int) -> None:
    # b = L' // min(blocks, L') == 1: strategy (2) or (3), both reached over seeds
    kinds = set()
    for seed in range(60):
        mask = as_list(block_mask(length, gen(seed), blocks=blocks))
        s = mask.index(True) if mask[0] is False else mask.index(False)
        if mask[0] is False:  # left-to-right: s visible, rest masked
            assert mask == [F] * s + [T] * (length - s) and 1 <= s <= length - 1
            kinds.add("ltr")
        else:  # right-to-left: s masked, rest visible
            assert mask == [T] * s + [F] * (length - s) and 1 <= s <= length - 1
            kinds.add("rtl")
    assert kinds == {"ltr", "rtl"}


def test_split_points_cover_their_range() -> None:
    visible = {int((~left_to_right_mask(5, gen(s))).sum()) for s in range(100)}
    masked = {int(right_to_left_mask(5, gen(s)).sum()) for s in range(100)}
    cloze = {int(cloze_mask(5, gen(s)).nonzero()) for s in range(100)}
    assert visible == masked == {1, 2, 3, 4}
    assert cloze == {0, 1, 2, 3, 4}  # EOS included


def test_random_mask_rate_follows_p() -> None:
    masks = torch.stack([random_mask(26, gen(s), p=0.3) for s in range(400)])
    assert abs(masks.float().mean().item() - 0.3) < 0.02
    drawn = torch.stack([random_mask(26, gen(s)) for s in range(400)]).float().mean(1)
    assert abs(drawn.mean().item() - 0.5) < 0.05 and drawn.min() < 0.1 and drawn.max() > 0.9


@pytest.mark.parametrize("name", STRATEGIES)
def test_strategies_are_deterministic_given_a_generator(name: str) -> None:
    fn = NOISE_STRATEGIES.get(name)
    for seed in range(10):
        assert torch.equal(fn(9, gen(seed)), fn(9, gen(seed)))
    assert len({tuple(fn(9, gen(s)).tolist()) for s in range(30)}) > (1 if name != "full" else 0)


def test_short_labels_fall_back_to_random() -> None:
    tok = Tokenizer(Charset.preset("36"), max_length=8)
    for name in ("left_to_right", "right_to_left", "block", "cloze"):
        one_char = tok.encode(["a"] * 20, bos=False)  # L' = 2
        noised = mask_noise(one_char, tok.MASK, tok.PAD, (name,), gen(0))
        assert set(noised.strategies) == {"random"} and noised.loss_mask[:, :2].any(1).all()
        two_chars = tok.encode(["ab"], bos=False)  # L' = 3: the strategy itself
        assert mask_noise(two_chars, tok.MASK, tok.PAD, (name,), gen(0)).strategies == [name]
        if name != "cloze":  # a split or blocks need two tokens; a cloze of EOS alone is valid
            with pytest.raises(ValueError, match="needs L'"):
                NOISE_STRATEGIES.get(name)(torch.tensor([3, 1]), gen(0))
    assert mask_noise(tok.encode(["a"], bos=False), tok.MASK, tok.PAD, ("full",)).strategies == [
        "full"
    ]


@pytest.mark.parametrize("name", STRATEGIES)
def test_batched_masks_stay_inside_each_label(name: str) -> None:
    lengths = torch.tensor([3, 4, 7, 12, 26, 5] * 20)
    masks = NOISE_STRATEGIES.get(name)(lengths, gen(4), width=26)
    assert masks.shape == (120, 26)
    inside = torch.arange(26)[None] < lengths[:, None]
    assert not (masks & ~inside).any() and masks.any(1).all()
    for row, n in zip(masks.tolist(), lengths.tolist()):
        m = int(sum(row[:n]))
        prefix_visible = row[:n] == [F] * (n - m) + [T] * m
        if name in ("left_to_right", "full"):
            assert prefix_visible
        elif name == "right_to_left":
            assert row[:n] == [T] * m + [F] * (n - m)
        elif name == "block":  # whole blocks visible, or the (2)/(3) fallback for b == 1
            assert prefix_visible or row[:n] == [T] * m + [F] * (n - m)
        elif name == "cloze":
            assert m == 1


def test_mask_noise_on_a_batch() -> None:
    tok = Tokenizer(Charset.preset("36"), max_length=8)
    labels = tok.encode(["cat", "a", "hello"], bos=False)  # [3, 9]
    noised = mask_noise(labels, tok.MASK, tok.PAD, generator=gen(0))
    lengths = torch.tensor([4, 2, 6])
    for row, n in enumerate(lengths.tolist()):
        m = noised.loss_mask[row]
        assert not m[n:].any() and m[:n].any()  # in the loss only inside L'
        assert (noised.tokens[row, n:] == tok.MASK).all()  # after L': always MASK
        assert torch.equal(noised.tokens[row, :n][m[:n]], torch.full((int(m.sum()),), tok.MASK))
        assert torch.equal(noised.tokens[row, :n][~m[:n]], labels[row, :n][~m[:n]])
        assert noised.p_mask[row].item() == pytest.approx(m.sum().item() / n)
    again = mask_noise(labels, tok.MASK, tok.PAD, generator=gen(0))
    assert torch.equal(again.tokens, noised.tokens) and again.strategies == noised.strategies


def test_strategies_are_drawn_uniformly_and_can_be_restricted() -> None:
    tok = Tokenizer(Charset.preset("36"), max_length=25)
    labels = tok.encode(["scene"] * 1200, bos=False)
    counts = Counter(mask_noise(labels, tok.MASK, tok.PAD, generator=gen(1)).strategies)
    assert set(counts) == set(STRATEGIES)
    assert all(150 < c < 250 for c in counts.values()), counts  # 200 expected each
    only = mask_noise(labels[:50], tok.MASK, tok.PAD, ("full",), gen(2))
    assert set(only.strategies) == {"full"} and bool(only.loss_mask[:, :6].all())
    with pytest.raises(ValueError, match="unknown noise strategies"):
        mask_noise(labels, tok.MASK, tok.PAD, ("zigzag",))


def test_replacement_rate_statistics() -> None:
    tok = Tokenizer(Charset.preset("36"), max_length=25)
    labels = tok.encode(["abcdefghijklmnopqrstuvwxy"] * 2000, bos=False)  # L' = 26
    v = tok.num_classes
    out, p = replace_tokens(
        labels, v, tok.MASK, tok.PAD, t=torch.full((2000,), 0.5), generator=gen(0)
    )
    assert torch.allclose(p, torch.full((2000,), 0.999 * 0.5 + 1e-3))
    changed = (out != labels).float().mean().item()
    # each token is re-drawn with probability p; a re-draw hits the same token 1 in V times
    assert changed == pytest.approx(p[0].item() * (1 - 1 / v), abs=0.01)
    assert int(out.max()) < v and int(out.min()) >= 0  # never MASK/PAD/BOS inside L'
    _, floor = replace_tokens(labels[:3], v, tok.MASK, tok.PAD, t=torch.zeros(3))
    assert torch.allclose(floor, torch.full((3,), 1e-3))
    # t ~ U(0, 1): the mean rate is about (1 + eps) / 2, and it varies row to row
    out, p = replace_tokens(labels, v, tok.MASK, tok.PAD, generator=gen(1))
    assert abs(p.mean().item() - 0.5) < 0.03 and p.std().item() > 0.25
    short = tok.encode(["ab"], bos=False)
    out, _ = replace_tokens(short, v, tok.MASK, tok.PAD, generator=gen(2))
    assert (out[0, 3:] == tok.MASK).all()


def test_denoising_loss_normalization() -> None:
    c = 5
    labels = torch.tensor([[1, 2, 0, 9], [3, 0, 9, 9]])  # PAD = 9; L' = 3 and 2
    lengths = torch.tensor([3, 2])
    mask = torch.tensor([[T, F, T, F], [F, T, F, F]])
    p_mask = torch.tensor([2 / 3, 1 / 2])
    # uniform logits: every masked CE is log C, and sum / p_mask / L' = log C for every row
    flat = losses.denoising_loss(torch.zeros(2, 4, c), labels, mask, p_mask, lengths)
    assert flat.item() == pytest.approx(math.log(c))
    # hand-worked: row 0 masked CEs a, b; row 1 masked CE d
    logits = torch.zeros(2, 4, c)
    logits[0, 0, 1] = 2.0  # right class at position 0
    logits[1, 1, 4] = 3.0  # wrong class at position 1 (gold EOS)
    a = -math.log(math.exp(2) / (math.exp(2) + 4))
    b = math.log(c)
    d = -math.log(1 / (math.exp(3) + 4))
    expected = ((a + b) / (2 / 3) / 3 + d / (1 / 2) / 2) / 2
    got = losses.denoising_loss(logits, labels, mask, p_mask, lengths)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # the replacement loss averages over the 5 non-PAD positions
    rep = losses.replacement_loss(logits, labels, pad_id=9)
    ce = [a, b, b, b, d]
    assert rep.item() == pytest.approx(sum(ce) / 5, rel=1e-5)
