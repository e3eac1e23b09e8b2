"""QMask on tiny random Qwen2-VL / Qwen2.5-VL / Qwen3-VL: losses, causality, LoRA, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("peft")

from qmask_helpers import BOX, R2T, sample, tiny_cache, word_image  # noqa: E402

from ocrkit.anchoring.masks import render_mask  # noqa: E402
from ocrkit.anchoring.model import QMask, QMaskConfig  # noqa: E402
from ocrkit.testing.tiny_vlm import FAMILIES, tiny_processor, tiny_vlm  # noqa: E402


@pytest.fixture(scope="module")
def processors(tmp_path_factory):
    return {f: tiny_processor(f, tiny_cache(tmp_path_factory)) for f in FAMILIES}


def build(processors, family: str, **cfg) -> QMask:
    torch.manual_seed(0)
    head = cfg.pop("head", {"size": "small", "channels": 16, "min_channels": 8})
    config = QMaskConfig(tiny=family, head=head, **cfg)
    return QMask(tiny_vlm(family, processors[family]), processors[family], config)


def batch_for(model: QMask, answers=("OPEN", '[{"bbox_2d": [1, 2, 3, 4]}]')):
    rng = np.random.default_rng(0)
    img = word_image()
    mask = render_mask([("OPEN", BOX)], 112, 112)
    s1 = sample(img, R2T, answers[0], mask, prior="OCR prior:\n[1, 2, 3, 4] AB\n")
    big = rng.integers(0, 255, (70, 150, 3), dtype=np.uint8)
    small = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
    q = 'Where is "X" located in the image?'
    s2 = {
        "images": [big, small],
        "prompt": q,
        "question": q,
        "answer": answers[1],
        "masks": [None, None],
    }
    return model.collator()([s1, s2])


@pytest.mark.parametrize("family", FAMILIES)
def test_forward_backward_with_and_without_masks(processors, family: str) -> None:
    model = build(processors, family)
    batch = batch_for(model)
    tok = model.processor.tokenizer
    assert tok.decode(batch["input_ids"][0][batch["query_mask"][0]]) == R2T  # the question only
    assert tok.decode(batch["input_ids"][0][batch["labels"][0] != -100]) == "OPEN<|im_end|>"
    assert len(batch["image_grid_thw"]) == 3  # three images of different sizes in one batch
    out = model.training_step(batch)
    assert out["masked_images"].item() == 1 and torch.isfinite(out["loss"])
    out["loss"].backward()
    head_grad = sum(p.grad.abs().sum() for p in model.head.parameters())
    lm_grad = sum(
        p.grad.abs().sum()
        for p in model.vlm.model.language_model.parameters()
        if p.grad is not None
    )
    assert head_grad > 0 and lm_grad > 0
    # Without any mask: L = lambda_txt * L_NTP only, and the head gets no gradient.
    model.zero_grad()
    batch["masks"] = [None, None, None]
    out = model.training_step(batch)
    assert out["loss"].item() == pytest.approx(out["loss_ntp"].item())
    out["loss"].backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.head.parameters())


@pytest.mark.parametrize("family", FAMILIES)
def test_mask_does_not_depend_on_the_answer(processors, family: str) -> None:
    """Through the whole VLM no gradient reaches the answer tokens; generation reads the same mask."""
    from ocrkit.anchoring.inference import QMaskPredictor

    model = build(processors, family).eval()
    # Autograd through the VLM: no path from answer-token embeddings to the mask.
    batch = batch_for(model)
    embeds = model.vlm.get_input_embeddings()
    captured = {}
    handle = embeds.register_forward_hook(
        lambda m, i, o: captured.setdefault("e", o.retain_grad() or o)
    )
    out = model(batch)
    handle.remove()
    f = model.head.factor
    for lg, (_t, h, w) in zip(out["mask_logits"], batch["image_grid_thw"].tolist()):
        assert tuple(lg.shape) == (h // 2 * f, w // 2 * f)  # one map per image, on its grid
    sum(m.sum() for m in out["mask_logits"]).backward()
    grad = captured["e"].grad.abs().sum(-1)
    answer = batch["labels"] != -100
    assert grad[answer].eq(0).all() and grad[batch["query_mask"]].gt(0).all()
    # The mask read at inference (prefill of generate) is the teacher-forced one.
    predictor = QMaskPredictor(model, device="cpu", max_new_tokens=2, threshold=0.5)
    result = predictor.anchor(word_image(), R2T)
    with torch.no_grad():
        single = model(model.collator()([sample(word_image(), R2T, "OPEN", None)]))["mask_logits"][
            0
        ]
    prob = torch.sigmoid(single).numpy()
    assert result.heatmaps[0].shape == (112, 112)
    assert prob.shape == (16, 16)
    # 16 -> 112 is a 7x bilinear resize: cell k's centre falls on pixel 7k + 3, so those pixels
    # are the cells themselves. Elementwise equal to the teacher-forced map (0.0 apart on CPU;
    # 1e-5 allows another attention kernel in generate's prefill).
    torch.testing.assert_close(
        torch.from_numpy(result.heatmaps[0][3::7, 3::7]), torch.from_numpy(prob), rtol=0, atol=1e-5
    )


def _lora_expected(model: QMask, r: int) -> int:
    t = model.vlm.config.text_config
    kv = t.num_key_value_heads * (
        getattr(t, "head_dim", None) or t.hidden_size // t.num_attention_heads
    )
    q = t.num_attention_heads * (
        getattr(t, "head_dim", None) or t.hidden_size // t.num_attention_heads
    )
    h, i = t.hidden_size, t.intermediate_size
    per_layer = (h + q) + 2 * (h + kv) + (q + h) + 2 * (h + i) + (i + h)
    return r * per_layer * t.num_hidden_layers


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_trains_only_adapters_and_head(processors, family: str) -> None:
    model = build(processors, family, finetune="lora", lora={"r": 4, "alpha": 8, "dropout": 0.0})
    counts = model.parameter_counts()
    assert counts["lora"] == _lora_expected(model, 4)
    assert counts["trainable"] == counts["lora"] + counts["head"]
    assert not any("visual" in n and "lora_" in n for n, _ in model.named_parameters())


def test_freeze_vision_keeps_the_merger_trainable(processors) -> None:
    model = build(processors, "qwen2_5_vl", freeze_vision=True)
    visual = dict(model.vlm.model.visual.named_parameters())
    assert all(not p.requires_grad for n, p in visual.items() if not n.startswith("merger."))
    assert all(p.requires_grad for n, p in visual.items() if n.startswith("merger."))
    assert all(p.requires_grad for p in model.vlm.model.language_model.parameters())
    model.set_policy(train_merger=False)
    assert not any(p.requires_grad for p in model.vlm.model.visual.parameters())


@pytest.mark.parametrize("finetune", ["full", "lora"])
def test_save_load_round_trip(processors, tmp_path, finetune: str) -> None:
    model = build(
        processors, "qwen2_vl", finetune=finetune, lora={"r": 4, "alpha": 8, "dropout": 0.0}
    ).eval()
    if finetune == "lora":  # non-zero adapters, so the round trip is a real check
        with torch.no_grad():
            for n, p in model.vlm.named_parameters():
                if "lora_B" in n:
                    p.normal_(0, 0.1)
    model.save_pretrained(tmp_path / "m")
    files = {p.name for p in (tmp_path / "m").iterdir()}
    assert {"qmask_config.json", "head.safetensors", "processor", "vlm"} <= files
    assert ("adapter_model.safetensors" in files) == (finetune == "lora")
    loaded = QMask.from_pretrained(tmp_path / "m").eval()
    batch = batch_for(model)
    with torch.no_grad():
        a, b = model(batch), loaded(batch)
    torch.testing.assert_close(a["loss_ntp"], b["loss_ntp"])
    for x, y in zip(a["mask_logits"], b["mask_logits"]):
        torch.testing.assert_close(x, y)
    assert loaded.parameter_counts() == model.parameter_counts()
    assert loaded.config.coords == "native" and loaded.head.config.size == "small"


def test_folders_saved_before_the_fidelity_pass_load_as_they_were(processors, tmp_path) -> None:
    import json

    model = build(processors, "qwen2_5_vl")  # the small head: the old default's layers
    model.save_pretrained(tmp_path / "m")
    path = tmp_path / "m" / "qmask_config.json"
    record = json.loads(path.read_text())
    record["version"] = 1  # what an older ocrkit wrote: the recipe's head dict, no coords
    record["head"] = {"channels": 16, "min_channels": 8}
    record.pop("coords")
    path.write_text(json.dumps(record))
    loaded = QMask.from_pretrained(tmp_path / "m")
    assert loaded.head.config.size == "small" and loaded.config.coords == "absolute"
    assert loaded.parameter_counts()["head"] == model.parameter_counts()["head"]


def test_real_loading_path_from_a_local_folder(processors, tmp_path) -> None:
    """model.base: AutoProcessor + AutoModelForImageTextToText.from_pretrained of a folder."""
    vlm = tiny_vlm("qwen3_vl", processors["qwen3_vl"])
    vlm.save_pretrained(tmp_path / "base")
    processors["qwen3_vl"].save_pretrained(tmp_path / "base")
    model = QMask.from_config(
        {
            "base": str(tmp_path / "base"),
            "finetune": "lora",
            "head": {"size": "small", "channels": 16},
        }
    )
    assert type(model.vlm).__name__ == "Qwen3VLForConditionalGeneration"
    torch.testing.assert_close(model.vlm.lm_head.weight, vlm.lm_head.weight)
    model.save_pretrained(tmp_path / "q")
    assert not (tmp_path / "q" / "vlm").exists()  # LoRA on a loadable base: adapter only
    assert QMask.from_pretrained(tmp_path / "q").config.base == str(tmp_path / "base")
    with pytest.raises(FileNotFoundError, match="Qwen2.5-VL-3B-Instruct"):
        QMask.from_config({"base": str(tmp_path / "missing")})
