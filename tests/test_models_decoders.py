"""The autoregressive decoder: causality, teacher-forced loss, KV-cache equivalence, stopping."""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F

from ocrkit.models.decoders import DECODERS, ARDecoder
from ocrkit.text import Charset, Tokenizer


@pytest.fixture
def tokenizer() -> Tokenizer:
    return Tokenizer(Charset.preset("36"), max_length=10)


def tiny_decoder(tokenizer: Tokenizer, **kwargs) -> ARDecoder:
    torch.manual_seed(0)
    args = {"embed_dim": 32, "depth": 2, "num_heads": 2, "dropout": 0.0, **kwargs}
    return DECODERS.build("ar", tokenizer=tokenizer, in_features=24, **args)


def test_paper_defaults() -> None:
    defaults = {
        name: p.default
        for name, p in inspect.signature(ARDecoder.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    assert defaults["embed_dim"] == 512 and defaults["depth"] == 6 and defaults["num_heads"] == 8
    assert defaults["label_smoothing"] == 0.0
    dec = ARDecoder(Tokenizer(Charset.preset("94")), in_features=384, depth=1)
    assert dec.max_length == 25 and dec.memory_proj.in_features == 384
    assert dec.head.out_features == 95 and dec.token_embed.num_embeddings == 98


def test_teacher_forcing_shapes_and_causality(tokenizer: Tokenizer) -> None:
    dec = tiny_decoder(tokenizer).eval()
    memory = torch.randn(2, 9, 24)
    targets = tokenizer.encode(["hello", "ab"])
    logits = dec.forward_train(memory, targets)
    assert logits.shape == (2, 11, tokenizer.num_classes)
    changed = targets.clone()
    changed[:, 3] = tokenizer.text_to_ids("z")[0]  # input position 3
    logits2 = dec.forward_train(memory, changed)
    torch.testing.assert_close(logits2[:, :3], logits[:, :3], rtol=0, atol=1e-6)
    assert not torch.allclose(logits2[:, 3:], logits[:, 3:])


def test_loss_is_cross_entropy_without_pad(tokenizer: Tokenizer) -> None:
    dec = tiny_decoder(tokenizer).eval()
    memory = torch.randn(2, 9, 24, requires_grad=True)
    targets = tokenizer.encode(["hello", "ab"])
    loss, logs = dec.loss(memory, targets)
    logits = dec.forward_train(memory, targets)
    gold = targets[:, 1:]
    keep = gold != tokenizer.PAD
    expected = F.cross_entropy(logits[keep], gold[keep])
    torch.testing.assert_close(loss, expected)
    assert keep.sum() == 6 + 3  # characters + EOS of both words
    assert 0.0 <= float(logs["acc"]) <= 1.0
    loss.backward()
    assert memory.grad.abs().sum() > 0 and dec.token_embed.weight.grad.abs().sum() > 0


def test_label_smoothing_changes_the_loss(tokenizer: Tokenizer) -> None:
    memory = torch.randn(2, 9, 24)
    targets = tokenizer.encode(["hello", "ab"])
    plain = tiny_decoder(tokenizer).eval().loss(memory, targets)[0]
    smooth = tiny_decoder(tokenizer, label_smoothing=0.1).eval().loss(memory, targets)[0]
    assert not torch.allclose(plain, smooth)


@pytest.mark.parametrize("stop_at_eos", [False, True])
def test_cached_decoding_equals_uncached(tokenizer: Tokenizer, stop_at_eos: bool) -> None:
    dec = tiny_decoder(tokenizer).eval()
    memory = torch.randn(3, 9, 24)
    cached = dec.decode(memory, use_cache=True, stop_at_eos=stop_at_eos)
    uncached = dec.decode(memory, use_cache=False, stop_at_eos=stop_at_eos)
    assert cached.shape == uncached.shape
    if not stop_at_eos:
        assert cached.shape == (3, 11, tokenizer.num_classes)
    torch.testing.assert_close(cached, uncached, rtol=1e-4, atol=1e-5)
    assert torch.equal(cached.argmax(-1), uncached.argmax(-1))
    torch.testing.assert_close(cached.sum(-1), torch.ones(cached.shape[:2]))


def test_greedy_decoding_feeds_back_its_own_argmax(tokenizer: Tokenizer) -> None:
    """Teacher forcing on the greedy output reproduces the greedy probabilities."""
    dec = tiny_decoder(tokenizer).eval()
    memory = torch.randn(2, 9, 24)
    probs = dec.decode(memory, stop_at_eos=False)
    bos = torch.full((2, 1), tokenizer.BOS)
    targets = torch.cat([bos, probs.argmax(-1)], dim=1)
    teacher = dec.forward_train(memory, targets).softmax(-1)
    torch.testing.assert_close(teacher, probs, rtol=1e-4, atol=1e-5)


def test_decoding_stops_when_every_sequence_ended(tokenizer: Tokenizer) -> None:
    dec = tiny_decoder(tokenizer).eval()
    with torch.no_grad():
        dec.head.bias[tokenizer.EOS] = 100.0  # EOS always wins
    probs = dec.generate(torch.randn(4, 9, 24))
    assert probs.shape == (4, 1, tokenizer.num_classes)
    assert dec.decode(torch.randn(4, 9, 24), stop_at_eos=False).shape[1] == 11
    assert dec.decode(torch.randn(4, 9, 24), max_length=3, stop_at_eos=False).shape[1] == 4
