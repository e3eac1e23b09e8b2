"""MIM and MNSP models: masking, losses, shapes at every scale, teacher, gradients, ablations."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from ocrkit.pretrain import ABLATIONS, MNSP, MaskedImageModel, PretrainViews
from ocrkit.pretrain.losses import mim_loss, mla_loss, nsp_loss, patchify, pixel_target
from ocrkit.pretrain.masking import random_masking, unshuffle
from ocrkit.pretrain.views import upsample_tokens
from ocrkit.train.optim import build_optimizer

ENC = {"name": "vit_tiny", "depth": 2, "embed_dim": 48, "num_heads": 2, "patch_size": 4}
DEC = {"dim": 32, "depth": 2, "num_heads": 2}


def tiny_mnsp(seed: int = 0, **overrides) -> MNSP:
    torch.manual_seed(seed)
    teacher = MaskedImageModel({"encoder": ENC, "decoder": DEC}).encoder
    config = {"encoder": ENC, "mim_decoder": DEC, "nsp_decoder": {"dim": 32, "num_heads": 2}}
    return MNSP({**config, **overrides}, teacher=teacher)


def views(batch: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    names = ("small", "large", "zoom", "original")
    out = {n: torch.randn(batch, 3, 32, 128, generator=g) for n in names}
    out["zoom_box"] = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.25, 0.5, 0.75, 1.0]])[:batch]
    return out


# ---- masking and losses: hand-worked answers -------------------------------------------------
def test_random_masking_hides_the_ratio_and_unshuffle_restores_grid_order() -> None:
    m = random_masking(3, 256, 0.8, generator=torch.Generator().manual_seed(0))
    assert m.ids_keep.shape == (3, 51) and m.ids_masked.shape == (3, 205)  # int(256 * 0.2)
    assert m.mask.sum(1).tolist() == [205.0] * 3
    assert torch.equal(m.mask.gather(1, m.ids_keep), torch.zeros(3, 51))
    assert not torch.equal(m.ids_keep[0], m.ids_keep[1])  # per-sample masks
    # visible token j carries its own grid index; mask tokens carry -1
    visible = m.ids_keep.unsqueeze(-1).float()
    seq = unshuffle(visible, torch.full((1, 1, 1), -1.0), m)[..., 0]
    expected = torch.where(m.mask.bool(), -1.0, torch.arange(256).float().expand(3, -1))
    assert torch.equal(seq, expected)


def test_patchify_orders_patches_row_major_and_pixels_y_x_c() -> None:
    image = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(1, 3, 2, 4)  # C=3, H=2, W=4
    patches = patchify(image, 2)  # 1 x 2 grid of 2x2 patches
    assert patches.shape == (1, 2, 12)
    # patch 1 (right), pixel (y=0, x=0), channels 0..2 = image[:, :, 0, 2]
    assert patches[0, 1, :3].tolist() == image[0, :, 0, 2].tolist()
    assert patches[0, 0, 3:6].tolist() == image[0, :, 0, 1].tolist()  # (y=0, x=1)
    target = pixel_target(image, 2)
    assert torch.allclose(target.mean(-1), torch.zeros(1, 2), atol=1e-6)


def test_losses_known_values() -> None:
    pred = torch.zeros(1, 3, 2)
    target = torch.tensor([[[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]])
    mask = torch.tensor([[0.0, 1.0, 1.0]])
    assert mim_loss(pred, target, mask).item() == pytest.approx((4 + 9) / 2)  # masked only
    assert nsp_loss(pred, target).item() == pytest.approx((1 + 4 + 9) / 3)
    a, b, c = torch.tensor([[1.0, 1.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 3.0]])
    assert mla_loss(a, b, c).item() == pytest.approx(0.5 + 2.0)


def test_upsample_tokens_is_bicubic_on_the_2d_grid() -> None:
    grid = torch.arange(8.0).reshape(1, 1, 2, 4)  # one channel on a 2x4 grid
    tokens = grid.flatten(2).transpose(1, 2)  # [1, 8, 1], row-major
    up = upsample_tokens(tokens, (2, 4), (4, 8))
    ref = torch.nn.functional.interpolate(grid, size=(4, 8), mode="bicubic", align_corners=False)
    assert torch.allclose(up.transpose(1, 2).reshape(1, 1, 4, 8), ref)
    const = upsample_tokens(torch.ones(2, 4, 5), (1, 4), (2, 8))
    assert torch.allclose(const, torch.ones(2, 16, 5))


# ---- MNSP ------------------------------------------------------------------------------------
@pytest.mark.parametrize("pair", [0, 1, 2])
def test_mnsp_shapes_at_every_scale_pair(pair: int) -> None:
    model = tiny_mnsp()
    out = model(views(), pair=pair)
    n = [4, 16, 64, 256]  # 4x16, 8x32, 16x64, 32x128 with 4x4 patches: N(s_k+1) = 4 N(s_k)
    assert out["e_small"].shape == (2, 1 + n[pair], 48)
    assert out["e_large"].shape == (2, 1 + n[pair + 1], 48)
    assert out["d_nsp"].shape == (2, n[pair + 1], 48)  # teacher width
    assert out["e_masked"].shape == (2, 1 + 51, 48)
    assert out["mim_pred"].shape == (2, 256, 48)
    assert all(torch.isfinite(out[k]) for k in ("loss_nsp", "loss_mim", "loss_mla"))


def test_scale_pair_is_drawn_uniformly() -> None:
    model = tiny_mnsp()
    torch.manual_seed(0)
    counts = np.bincount([model.sample_pair() for _ in range(600)], minlength=3)
    assert counts.tolist() != [600, 0, 0] and all(150 < c < 250 for c in counts)


def test_teacher_gets_no_gradients_and_stays_bit_identical() -> None:
    model = tiny_mnsp()
    before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    optimizer = build_optimizer(model, 1e-2, 0.05, betas=(0.9, 0.95))
    model.train()
    assert not model.teacher.training  # train() keeps the teacher in eval mode
    for step in range(3):
        model.training_step({"views": views(seed=step)}, pair=step)["loss"].backward()
        assert all(p.grad is None for p in model.teacher.parameters())
        optimizer.step()
        optimizer.zero_grad()
    assert all(not p.requires_grad for p in model.teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.teacher.state_dict().items())
    trained = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert not trained & {id(p) for p in model.teacher.parameters()}


def test_masked_encoder_never_sees_masked_tokens() -> None:
    model = tiny_mnsp().eval()
    v = views()
    seen: list[int] = []
    hook = model.encoder.blocks[0].register_forward_hook(lambda m, i, o: seen.append(i[0].shape[1]))
    torch.manual_seed(5)
    out = model(v, pair=2)
    hook.remove()
    assert seen == [1 + 64, 1 + 256, 1 + 51]  # s_k, s_k+1, masked view: [CLS] + visible only
    # changing the pixels of every masked patch changes nothing the masked encoder outputs
    mask = out["masking"].mask.reshape(2, 1, 8, 32)
    pixel_mask = mask.repeat_interleave(4, 2).repeat_interleave(4, 3).bool().expand(-1, 3, -1, -1)
    v2 = dict(v, zoom=torch.where(pixel_mask, torch.randn_like(v["zoom"]) * 9, v["zoom"]))
    torch.manual_seed(5)
    out2 = model(v2, pair=2)
    assert torch.equal(out["masking"].ids_keep, out2["masking"].ids_keep)
    assert torch.equal(out["e_masked"], out2["e_masked"])
    # Eq. 3: the target comes from the original image, so nothing reads the hidden pixels
    assert torch.equal(out["loss_mim"], out2["loss_mim"])
    old = tiny_mnsp(mim_target="zoom").eval()  # the zoom-view target: the teacher sees them
    torch.manual_seed(5)
    first = old(v, pair=2)["loss_mim"]
    torch.manual_seed(5)
    assert not torch.equal(first, old(v2, pair=2)["loss_mim"])


def test_mim_loss_gradients_reach_the_nsp_decoder_only_with_guidance() -> None:
    model = tiny_mnsp()
    model(views(), pair=1)["loss_mim"].backward()
    grads = [p.grad for p in model.nsp_decoder.parameters()]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    plain = tiny_mnsp(guidance=False)
    plain(views(), pair=1)["loss_mim"].backward()
    assert all(p.grad is None for p in plain.nsp_decoder.parameters())


def test_mla_gradients_reach_all_three_views() -> None:
    model = tiny_mnsp()
    out = model(views(), pair=0)
    for key in ("e_masked", "e_small", "e_large"):
        out[key].retain_grad()
    out["loss_mla"].backward()
    for key in ("e_masked", "e_small", "e_large"):
        assert out[key].grad[:, 0].abs().sum() > 0  # through the [CLS] token
        assert out[key].grad[:, 1:].abs().sum() == 0


def _param_names(model: torch.nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_each_ablation_switch_removes_exactly_its_part() -> None:
    full = tiny_mnsp()
    names = _param_names(full)
    nsp = {n for n in names if n.startswith("nsp_decoder.")}
    mim = {n for n in names if n.startswith("mim_decoder.")}
    cross = {n for n in mim if ".cross_attn." in n or ".norm2." in n}  # guidance only
    assert cross and nsp
    all_losses = {"loss_nsp", "loss_mim", "loss_mla"}
    expected = {
        "nsp_only": ({"loss_nsp"}, mim),
        "mim_only": ({"loss_mim"}, nsp | cross),
        "no_mla": ({"loss_nsp", "loss_mim"}, set()),  # MLA has no parameters
        "no_guidance": (all_losses, cross),
        "no_zoom": (all_losses, set()),  # data-side switches (see the views test)
        "no_augment": (all_losses, set()),
    }
    for name, (losses, removed) in expected.items():
        model = tiny_mnsp(**ABLATIONS[name])
        out = model.training_step({"views": views()}, pair=1)
        assert {k for k in out if k.startswith("loss_")} == losses, name
        assert out["loss"].item() == pytest.approx(sum(out[k].item() for k in losses))
        assert _param_names(model) == names - removed, name
    pixel = tiny_mnsp(**ABLATIONS["pixel_targets"])
    assert pixel.teacher is None and pixel.target_dim == 4 * 4 * 3
    assert pixel(views(), pair=0)["d_nsp"].shape == (2, 16, 48)
    assert full.required_views() == ("small", "large", "zoom", "original")
    assert tiny_mnsp(**ABLATIONS["nsp_only"]).required_views() == ("small", "large")
    assert tiny_mnsp(**ABLATIONS["mim_only"]).required_views() == ("zoom", "original")
    assert tiny_mnsp(mim_target="zoom").required_views() == ("small", "large", "zoom")
    assert pixel.required_views() == ("small", "large", "zoom")  # pixels: the zoom view's own


def test_view_switches_zoom_and_augment() -> None:
    image = np.random.default_rng(0).integers(0, 256, (24, 90, 3), dtype=np.uint8)
    np.random.seed(0)
    plain = PretrainViews(("small", "large", "zoom"), augment="none", zoom=None)(image)
    assert torch.equal(plain["small"], plain["large"]) and torch.equal(
        plain["small"], plain["zoom"]
    )
    np.random.seed(0)
    zoomed = PretrainViews(("small", "zoom"), augment="none", zoom=(0.5, 0.6))(image)
    assert torch.equal(zoomed["small"], plain["small"]) and not torch.equal(
        zoomed["zoom"], plain["zoom"]
    )
    np.random.seed(0)
    augmented = PretrainViews(("small", "large"), augment="photometric", zoom=None)
    outs = [augmented(image) for _ in range(4)]
    assert any(not torch.equal(o["small"], o["large"]) for o in outs)
    assert tiny_mnsp(**ABLATIONS["no_zoom"]).view_transform().zoom is None
    assert tiny_mnsp(**ABLATIONS["no_augment"]).view_transform().augment is None


def test_config_errors_say_what_to_do() -> None:
    with pytest.raises(ValueError, match="model.teacher"):
        MNSP({"encoder": ENC})
    with pytest.raises(ValueError, match="guidance"):
        tiny_mnsp(mim=False)
    with pytest.raises(ValueError, match="mim_decoder"):
        tiny_mnsp(mim_decoderr={})
    with pytest.raises(ValueError, match="nothing to train"):
        tiny_mnsp(nsp=False, mim=False, mla=False, guidance=False)


# ---- MIM -------------------------------------------------------------------------------------
def test_mim_overfits_one_batch_and_sees_visible_tokens_only() -> None:
    torch.manual_seed(0)
    model = MaskedImageModel({"encoder": {**ENC, "depth": 1}, "decoder": DEC, "mask_ratio": 0.75})
    seen: list[int] = []
    model.encoder.blocks[0].register_forward_hook(lambda m, i, o: seen.append(i[0].shape[1]))
    # stripes of period 4 px, one phase per image: a masked patch is predictable from the
    # visible ones (pure noise would not be)
    cols = torch.arange(128).float()
    phase = torch.tensor([0.0, 1.0, 2.0, 3.0]).reshape(4, 1, 1, 1)
    images = torch.sin(2 * torch.pi * (cols + phase) / 4).expand(4, 3, 32, 128).contiguous()
    optimizer = build_optimizer(model, 3e-3, 0.0, betas=(0.9, 0.95))
    losses = []
    for _ in range(40):
        loss = model.training_step({"images": images})["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert seen[0] == 1 + 64  # [CLS] + 25% of 256
    assert np.mean(losses[-5:]) < 0.25 * np.mean(losses[:5])


def test_mim_feature_targets_use_a_frozen_teacher() -> None:
    torch.manual_seed(0)
    teacher = copy.deepcopy(MaskedImageModel({"encoder": ENC, "decoder": DEC}).encoder)
    model = MaskedImageModel({"encoder": ENC, "decoder": DEC, "target": "feature"}, teacher=teacher)
    out = model.training_step({"images": torch.randn(2, 3, 32, 128)})
    out["loss"].backward()
    assert model.target_dim == 48 and all(p.grad is None for p in model.teacher.parameters())
    assert model.decoder.head.weight.grad is not None


# ---- the L_mim target of Eq. 3 -----------------------------------------------------------------
def test_crop_tokens_reads_the_teacher_grid_at_the_zoom_tokens_places() -> None:
    from ocrkit.pretrain.views import crop_tokens

    # a 2x8 grid whose feature is the column index (channel 0) and the row index (channel 1)
    cols = torch.arange(8.0).repeat(2)
    rows = torch.arange(2.0).repeat_interleave(8)
    tokens = torch.stack([cols, rows], -1)[None]  # [1, 16, 2]
    whole = crop_tokens(tokens, (2, 8), torch.tensor([[0.0, 0.0, 1.0, 1.0]]))
    torch.testing.assert_close(whole, tokens)  # the whole image: the grid itself
    # the left half, resampled to 8 columns: zoom token j sits at image x = (j + 0.5) / 16,
    # grid column x * 8 - 0.5 = j / 2 - 0.25 (bilinear), clamped at the border for j = 0
    left = crop_tokens(tokens, (2, 8), torch.tensor([[0.0, 0.0, 1.0, 0.5]]))
    expected = torch.tensor([0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.25])
    torch.testing.assert_close(left[0, :8, 0], expected)
    torch.testing.assert_close(left[0, :, 1], rows)  # full height: rows unchanged
    # the bottom row band y in [0.5, 1] on a 2-row grid: row position 2y - 0.5 = 0.5 .. 1.5
    bottom = crop_tokens(tokens, (2, 8), torch.tensor([[0.5, 0.0, 1.0, 1.0]]))
    torch.testing.assert_close(bottom[0, :8, 1], torch.full((8,), 0.75))
    torch.testing.assert_close(bottom[0, 8:, 1], torch.full((8,), 1.0))  # clamped


def test_views_give_the_original_and_the_zoom_box() -> None:
    image = np.random.default_rng(0).integers(0, 256, (24, 90, 3), dtype=np.uint8)
    np.random.seed(0)
    out = PretrainViews(("zoom", "original"), augment="photometric", zoom=(0.5, 0.5))(image)
    y0, x0, y1, x1 = (out["zoom_box"].double() * torch.tensor([24, 90, 24, 90])).tolist()
    assert (round(y1 - y0), round(x1 - x0)) == (12, 45)  # round(24 * 0.5), round(90 * 0.5)
    assert all(abs(v - round(v)) < 1e-4 for v in (y0, x0, y1, x1))  # whole-pixel offsets
    # the box is where the crop came from: the original's crop, resized, is the zoom view
    crop = image[round(y0) : round(y1), round(x0) : round(x1)]
    np.random.seed(0)
    same = PretrainViews(("zoom", "original"), augment="none", zoom=(0.5, 0.5))(image)
    from ocrkit.data.transforms import StrTransform

    assert torch.equal(same["zoom"], StrTransform()(np.ascontiguousarray(crop)))
    plain = PretrainViews(("original",), augment="none")(image)["original"]
    assert torch.equal(out["original"], plain)  # the original view is never augmented
    assert "zoom_box" not in PretrainViews(("zoom",))(image)  # only with the original view


def test_mnsp_mim_target_is_the_teacher_on_the_original_image() -> None:
    from ocrkit.pretrain.views import crop_tokens

    model = tiny_mnsp(seed=1)
    v = views()
    tokens = model.teacher(v["original"], return_cls=False)
    got = model.mim_targets(v, (8, 32))
    torch.testing.assert_close(got, crop_tokens(tokens, (8, 32), v["zoom_box"]).float())
    torch.testing.assert_close(got[0], tokens[0].float())  # sample 0: the whole image
    assert not torch.allclose(got, model.teacher(v["zoom"], return_cls=False))
    # options: the zoom-view target (the earlier reading) and LMIM's non-affine LayerNorm
    old = tiny_mnsp(seed=1, mim_target="zoom", target_norm="layernorm")
    z = old.teacher(v["zoom"], return_cls=False)
    torch.testing.assert_close(
        old.mim_targets(v, (8, 32)), torch.nn.functional.layer_norm(z, (z.shape[-1],))
    )
    normed = tiny_mnsp(seed=1, target_norm="layernorm").mim_targets(v, (8, 32))
    torch.testing.assert_close(normed, torch.nn.functional.layer_norm(got, (got.shape[-1],)))
    with pytest.raises(ValueError, match="original"):
        model.mim_targets({k: v[k] for k in ("small", "large", "zoom")}, (8, 32))
    with pytest.raises(ValueError, match="target_norm"):
        tiny_mnsp(target_norm="batchnorm")
    assert MaskedImageModel({"encoder": ENC, "decoder": DEC}).config["target_norm"] == "layernorm"


def test_scale_sizes_are_a_recipe_option() -> None:
    from ocrkit.pretrain.mnsp import DEFAULT_SCALES

    assert tiny_mnsp().scales == [tuple(s) for s in DEFAULT_SCALES]  # ocrkit's choice
    three = tiny_mnsp(scales=[[8, 32], [16, 64], [32, 128]])
    assert three.scales == [(8, 32), (16, 64), (32, 128)] and three.grids[0] == (2, 8)
    assert three(views(), pair=1)["d_nsp"].shape == (2, 8 * 32, 48)  # (16x64) -> (32x128)
    with pytest.raises(ValueError, match="increasing"):
        tiny_mnsp(scales=[[8, 32], [8, 32]])
