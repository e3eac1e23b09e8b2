"""Auxiliary CTC head, conv stem and decoder sinusoidal positions: the CPU-recipe helpers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from ocrkit.models import Recognizer
from ocrkit.models.backbones import build_backbone
from ocrkit.models.ctc import CTCAuxHead

TINY = {
    "backbone": {"name": "vit_tiny", "depth": 1, "embed_dim": 32, "num_heads": 2, "patch_size": 8},
    "decoder": {"name": "ar", "embed_dim": 32, "depth": 1, "num_heads": 2},
    "charset": "36",
}


def test_ctc_of_uniform_frames_counts_alignments() -> None:
    """Uniform outputs over K classes, T=2 frames, one-character target 'a': the valid paths
    are 'a-', '-a', 'aa', so the loss is 2 ln K - ln 3 (per target character)."""
    head = CTCAuxHead(in_features=4, num_classes=5, upsample=2)
    torch.nn.init.zeros_(head.proj.weight)
    torch.nn.init.zeros_(head.proj.bias)
    targets = torch.tensor([[3, 0, 6]])  # 'char 3', EOS, PAD (6 >= num_classes: ignored)
    loss = head.loss(torch.randn(1, 2, 4), grid=(2, 1), targets=targets, eos=0)
    assert loss.item() == pytest.approx(2 * math.log(5) - math.log(3), rel=1e-5)


def test_ctc_frames_are_columns_times_upsample() -> None:
    head = CTCAuxHead(in_features=8, num_classes=7, upsample=2)
    out = head(torch.randn(3, 4 * 16, 8), grid=(4, 16))
    assert out.shape == (32, 3, 7)
    assert torch.allclose(out.exp().sum(-1), torch.ones(32, 3))
    with pytest.raises(ValueError, match="grid"):
        head(torch.randn(3, 10, 8), grid=(4, 16))


def test_recognizer_adds_weighted_ctc_and_trains_encoder_through_it() -> None:
    torch.manual_seed(0)
    model = Recognizer.from_config({**TINY, "aux_ctc": {"weight": 0.5}})
    batch = {"images": torch.randn(2, 3, 32, 128), "labels": ["abc", "hello"]}
    out = model.training_step(batch)
    assert out["loss"].item() == pytest.approx(
        out["decoder_loss"].item() + 0.5 * out["ctc"].item(), rel=1e-5
    )
    # The CTC term alone reaches the encoder and its own head, never the decoder.
    model.zero_grad()
    out["ctc"].requires_grad_(False)
    ctc = model.ctc_head.loss(
        model.backbone(batch["images"])[:, 1:],
        (4, 16),
        model.tokenizer.encode(batch["labels"])[:, 1:],
        model.tokenizer.EOS,
    )
    ctc.backward()
    assert model.ctc_head.proj.weight.grad.abs().sum() > 0
    assert model.backbone.patch_embed.proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.decoder.parameters())


def test_no_ctc_head_by_default_and_config_round_trip(tmp_path: Path) -> None:
    assert Recognizer.from_config(TINY).ctc_head is None
    model = Recognizer.from_config({**TINY, "aux_ctc": {"weight": 1.0, "upsample": 3}}).eval()
    model.save_pretrained(tmp_path)
    loaded = Recognizer.from_pretrained(tmp_path)
    assert loaded.ctc_head is not None and loaded.ctc_head.upsample == 3
    x = torch.randn(2, 3, 32, 128)
    assert torch.equal(model(x), loaded(x))


def test_ctc_needs_a_backbone_with_a_grid() -> None:
    with pytest.raises(ValueError, match="token grid"):
        Recognizer(torch.nn.Identity(), torch.nn.Identity(), None, aux_ctc={"weight": 1.0})


@pytest.mark.parametrize("patch", [4, 8])
def test_conv_stem_keeps_the_patch_grid(patch: int) -> None:
    vit = build_backbone("vit_tiny", depth=1, embed_dim=32, num_heads=2, patch_size=patch,
                         stem="conv")  # fmt: skip
    for h, w in [(32, 128), (16, 64)]:
        out = vit(torch.randn(2, 3, h, w))
        assert out.shape == (2, 1 + (h // patch) * (w // patch), 32)
    keep = torch.tensor([[0, 5, 7], [1, 2, 3]])
    assert vit(torch.randn(2, 3, 32, 128), ids_keep=keep).shape == (2, 4, 32)
    with pytest.raises(ValueError, match="power-of-two"):
        build_backbone("vit_tiny", depth=1, embed_dim=32, num_heads=2, patch_size=12, img_size=(48, 96),
                       stem="conv")  # fmt: skip
    with pytest.raises(ValueError, match="stem"):
        build_backbone("vit_tiny", depth=1, embed_dim=32, num_heads=2, stem="hybrid")


def test_decoder_sincos_positions_and_cache_equivalence() -> None:
    torch.manual_seed(0)
    model = Recognizer.from_config(TINY).eval()  # default: sincos+learned
    assert model.decoder.pos_sincos.abs().max() == pytest.approx(1.0, abs=1e-3)
    cfg = {**TINY, "decoder": {**TINY["decoder"], "positions": "learned"}}
    assert Recognizer.from_config(cfg).decoder.pos_sincos.abs().max() == 0
    memory = model.backbone(torch.randn(3, 3, 32, 128))
    cached = model.decoder.decode(memory, use_cache=True, stop_at_eos=False)
    uncached = model.decoder.decode(memory, use_cache=False, stop_at_eos=False)
    assert torch.allclose(cached, uncached, atol=1e-5)
    with pytest.raises(ValueError, match="positions"):
        Recognizer.from_config({**TINY, "decoder": {**TINY["decoder"], "positions": "rope"}})


def test_saved_config_spells_out_decoder_defaults(tmp_path: Path) -> None:
    """A folder keeps meaning the same model if a later release changes a decoder default."""
    import json

    Recognizer.from_config(TINY).save_pretrained(tmp_path)
    decoder = json.loads((tmp_path / "config.json").read_text())["decoder"]
    assert decoder["positions"] == "sincos+learned"
    assert decoder["label_smoothing"] == 0.0 and decoder["embed_dim"] == 32
    assert "tokenizer" not in decoder and "in_features" not in decoder


def test_ctc_runs_on_svtrv2_grid() -> None:
    """SVTRv2 has no [CLS]: all its H/8 x W/4 tokens form the CTC grid (4 x 32 at 32x128)."""
    torch.manual_seed(0)
    backbone = {"name": "svtrv2_small", "dims": [16, 24, 32], "num_heads": [2, 2, 4],
                "depths": [1, 2, 1]}  # fmt: skip
    model = Recognizer.from_config({**TINY, "backbone": backbone, "aux_ctc": {"weight": 1.0}})
    assert model.backbone.grid_size(32, 128) == (4, 32)
    out = model.training_step({"images": torch.randn(2, 3, 32, 128), "labels": ["ab", "cde"]})
    assert torch.isfinite(out["ctc"]) and out["ctc"] > 0


def test_conv_stem_visible_tokens_never_see_hidden_patches() -> None:
    """With ids_keep the conv stem reads only visible patches (no leak for masked modeling)."""
    torch.manual_seed(0)
    vit = build_backbone("vit_tiny", patch_size=8, embed_dim=32, depth=1, num_heads=2,
                         stem="conv").eval()  # fmt: skip
    ids_keep = torch.tensor([[0, 5, 17, 40, 63]])  # 5 of the 4x16 = 64 patches
    x = torch.randn(1, 3, 32, 128)
    changed = x.clone()
    visible = {int(i) for i in ids_keep[0]}
    for i in range(64):  # new pixels on every hidden patch
        if i not in visible:
            r, c = divmod(i, 16)
            changed[..., r * 8 : (r + 1) * 8, c * 8 : (c + 1) * 8] = torch.randn(3, 8, 8)
    with torch.no_grad():
        a, b = vit(x, ids_keep=ids_keep), vit(changed, ids_keep=ids_keep)
        assert a.shape == (1, 6, 32)
        assert torch.equal(a, b)
        # a visible patch's own pixels still matter
        changed[..., 0:8, 0:8] += 1.0
        assert not torch.allclose(vit(changed, ids_keep=ids_keep), a)
        # without ids_keep nothing is zeroed: the full encoding sees the hidden patches
        assert not torch.allclose(
            vit(x)[:, 1:][:, ids_keep[0]], vit(changed)[:, 1:][:, ids_keep[0]]
        )
