"""MDiff decoder: layers, embeddings, the loss plumbing, sampler configuration, encoders and the
save/load round trip inside a Recognizer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ocrkit.models import DECODERS, Recognizer
from ocrkit.models.decoders.mdiff import MDiffDecoder
from ocrkit.models.decoders.mdiff import loss as losses
from ocrkit.models.decoders.mdiff.noise import mask_noise, replace_tokens
from ocrkit.text import Charset, Tokenizer

TINY = {
    "backbone": {"name": "vit_small", "embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": 8},
    "decoder": {"name": "mdiff", "depth": 2, "num_heads": 2, "dropout": 0.0},
    "charset": "36",
    "max_length": 8,
}


def decoder(**kwargs) -> MDiffDecoder:
    torch.manual_seed(0)
    tok = Tokenizer(Charset.preset("36"), max_length=8)
    opts = {"depth": 2, "num_heads": 2, "dropout": 0.0, **kwargs}
    return DECODERS.build("mdiff", tokenizer=tok, in_features=16, **opts).eval()


def test_defaults_follow_the_paper() -> None:
    dec = decoder()
    assert dec.embed_dim == 16 and isinstance(dec.memory_proj, torch.nn.Identity)
    assert dec.sample_k == 3 and dec.token_replacement and dec.strategies[0] == "full"
    assert len(dec.strategies) == 6
    assert dec.defaults["sampler"] == "low_confidence" and dec.defaults["steps"] == 3
    assert dec.defaults["revise"] == 0
    assert dec.length == 9 and dec.head.out_features == 37  # EOS + 36 characters
    assert dec.token_embed.num_embeddings == 40  # + BOS, MASK, PAD
    wide = DECODERS.build("mdiff", tokenizer=dec.tokenizer, in_features=384, depth=1)
    assert wide.layers[0].self_attn.num_heads == 6  # width // 64, as MDiff4STR-S/B


def test_embedding_is_scaled_tokens_plus_sinusoidal_plus_learned() -> None:
    dec = decoder()
    tokens = torch.tensor([[1, 2, 0, 39, 39, 39, 39, 39, 39]])
    expected = dec.token_embed(tokens) * math.sqrt(16) + dec.pos_sincos + dec.pos_embed
    torch.testing.assert_close(dec.embed(tokens), expected)
    table = dec.pos_sincos[0]
    assert torch.allclose(table[0, :8], torch.zeros(8)) and torch.allclose(
        table[0, 8:], torch.ones(8)
    )
    assert "pos_sincos" not in dec.state_dict()  # fixed: not a weight


def test_attention_is_bidirectional() -> None:
    dec = decoder()
    kv = dec.memory_kv(torch.randn(1, 5, 16))
    a = torch.full((1, 9), dec.tokenizer.MASK)
    b = a.clone()
    b[0, 6] = 3  # a later token changes the earliest position's prediction
    assert not torch.allclose(dec.logits(a, kv)[0, 0], dec.logits(b, kv)[0, 0])


def test_grouped_rows_share_one_image() -> None:
    dec = decoder()
    memory = torch.randn(2, 5, 16)
    tokens = torch.randint(0, 37, (6, 9))  # 3 rows per image
    grouped = dec.logits(tokens, dec.memory_kv(memory), group=3)
    repeated = dec.logits(tokens, dec.memory_kv(memory.repeat_interleave(3, dim=0)))
    torch.testing.assert_close(grouped, repeated)


def test_loss_is_the_two_terms_on_the_drawn_noise() -> None:
    dec = decoder(sample_k=2)
    tok = dec.tokenizer
    memory = torch.randn(2, 5, 16)
    targets = tok.encode(["cat", "a1"])  # with BOS, as Recognizer.training_step passes them
    torch.manual_seed(7)
    total, logs = dec.loss(memory, targets)
    # redo by hand from the same RNG state: 2 copies per label, label-major
    torch.manual_seed(7)
    copies = targets[:, 1:].repeat_interleave(2, dim=0)
    noised = mask_noise(copies, tok.MASK, tok.PAD)
    replaced, _ = replace_tokens(copies, tok.num_classes, tok.MASK, tok.PAD)
    kv = dec.memory_kv(memory.repeat_interleave(2, dim=0))
    lengths = torch.tensor([4, 4, 3, 3])
    denoise = losses.denoising_loss(
        dec.logits(noised.tokens, kv), copies, noised.loss_mask, noised.p_mask, lengths
    )
    replace = losses.replacement_loss(dec.logits(replaced, kv), copies, tok.PAD)
    torch.testing.assert_close(logs["loss_denoise"], denoise)
    torch.testing.assert_close(logs["loss_replace"], replace)
    torch.testing.assert_close(total, denoise + replace)
    assert 0.0 <= float(logs["token_acc"]) <= 1.0


def test_loss_switches_and_gradients() -> None:
    dec = decoder(token_replacement=False, sample_k=1, strategies=["full"]).train()
    rows = []
    dec.layers[0].register_forward_hook(lambda m, args, out: rows.append(args[0].shape[0]))
    memory = torch.randn(3, 5, 16, requires_grad=True)
    total, logs = dec.loss(memory, dec.tokenizer.encode(["ab", "c", "hello"], bos=False))
    assert rows == [3] and "loss_replace" not in logs  # one mask-noised copy per label
    total.backward()
    assert memory.grad.abs().sum() > 0 and dec.pos_embed.grad.abs().sum() > 0
    assert dec.token_embed.weight.grad[dec.tokenizer.MASK].abs().sum() > 0  # "full" masks all
    rows.clear()
    paper = decoder(sample_k=3)
    paper.layers[0].register_forward_hook(lambda m, args, out: rows.append(args[0].shape[0]))
    paper.loss(memory.detach(), dec.tokenizer.encode(["ab", "c", "hello"]))
    assert rows == [3 * 6]  # 3 mask-noised + 3 replaced copies per label, one call
    with pytest.raises(ValueError, match="targets of width"):
        dec.loss(memory, torch.zeros(3, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="unknown strategies"):
        decoder(strategies=["full", "zigzag"])


def test_sampler_defaults_per_call_and_context() -> None:
    dec = decoder()
    memory = torch.randn(2, 5, 16)
    assert dec.sample(memory, sampler="parallel").passes == 1
    assert 1 <= dec.sample(memory).passes <= 3
    assert dec.sample(memory, sampler="parallel", revise=2).passes == 3
    assert dec.sample(memory, sampler="autoregressive").passes <= 9
    with dec.sampling(sampler="parallel", revise=1):
        assert dec.sample(memory).passes == 2
        assert dec.generate(memory).shape == (2, 9, 37)
    assert dec.defaults["sampler"] == "low_confidence" and dec.defaults["revise"] == 0
    torch.testing.assert_close(
        dec.generate(memory, sampler="parallel"), dec.sample(memory, sampler="parallel").probs
    )
    with pytest.raises(KeyError, match="unknown sampler"):
        dec.sample(memory, sampler="beam")
    with pytest.raises(KeyError, match="unknown sampler"):
        decoder(sampler="beam")
    with pytest.raises(TypeError, match="takes no option"):
        dec.sample(memory, sampler="parallel", block=4)
    with pytest.raises(ValueError, match="steps must be"):
        dec.sample(memory, steps=0)
    # options saved with the default sampler apply to it only
    semi = decoder(sampler="semi_autoregressive", sampler_options={"block": 2})
    assert semi.sample(memory, steps=2, early_stop=False).passes == 2
    assert semi.sample(memory, sampler="parallel").passes == 1
    # the random sampler is seeded: the same seed, the same output
    a = dec.sample(memory, sampler="random", seed=3).probs
    torch.testing.assert_close(a, dec.sample(memory, sampler="random", seed=3).probs)


def noise_images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (32, 128, 3), dtype=np.uint8) for _ in range(n)]


def test_recognizer_api_and_batch_independence() -> None:
    torch.manual_seed(0)
    model = Recognizer.from_config(TINY).eval()
    x = torch.randn(3, 3, 32, 128)
    assert model(x).shape == (3, 9, 37)
    torch.testing.assert_close(
        model(x, sampler="parallel", steps=1),
        model.decoder.generate(model.backbone(x), sampler="parallel"),
    )
    images = noise_images(5)
    whole = model.predict(images)
    split = model.predict(images, batch_size=2)
    assert [p.text for p in whole] == [p.text for p in split]
    np.testing.assert_allclose(
        [p.confidence for p in whole], [p.confidence for p in split], rtol=1e-4
    )


@pytest.mark.parametrize(
    "backbone",
    [
        {"name": "svtrv2_small", "dims": [16, 24, 32], "num_heads": [2, 2, 4], "depths": [1, 2, 1]},
        {"name": "vit_tiny", "embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": 8},
    ],
)
def test_runs_on_svtrv2_and_vit_encoders(backbone: dict) -> None:
    torch.manual_seed(0)
    model = Recognizer.from_config({**TINY, "backbone": backbone})
    out = model.training_step({"images": torch.randn(2, 3, 32, 128), "labels": ["ab", "xyz"]})
    out["loss"].backward()
    first = next(model.backbone.parameters())
    assert torch.isfinite(out["loss"]) and first.grad is not None and first.grad.abs().sum() > 0
    assert len(model.eval().predict(noise_images(2))) == 2


def test_save_and_load_keep_weights_and_sampler(tmp_path: Path) -> None:
    torch.manual_seed(1)
    config = {**TINY, "decoder": {**TINY["decoder"], "sampler": "cloze", "revise": 1}}
    model = Recognizer.from_config(config).eval()
    folder = model.save_pretrained(tmp_path / "m")
    saved = json.loads((folder / "config.json").read_text())["decoder"]
    assert saved["name"] == "mdiff" and saved["sampler"] == "cloze" and saved["revise"] == 1
    loaded = Recognizer.from_pretrained(folder)
    assert loaded.decoder.defaults == model.decoder.defaults
    x = torch.randn(2, 3, 32, 128)
    assert torch.equal(loaded(x), model(x))
    assert torch.equal(loaded(x, sampler="parallel"), model(x, sampler="parallel"))
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
