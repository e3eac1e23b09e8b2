"""A tiny random Q-Mask overfits one anchoring sample: Dice rises, the answer becomes right."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")

from qmask_helpers import BOX, R2T, sample, tiny_cache, word_image  # noqa: E402

from ocrkit.anchoring.inference import QMaskPredictor  # noqa: E402
from ocrkit.anchoring.masks import render_mask  # noqa: E402
from ocrkit.anchoring.model import QMask, QMaskConfig  # noqa: E402
from ocrkit.testing.tiny_vlm import tiny_processor, tiny_vlm  # noqa: E402


def test_overfits_one_sample(tmp_path_factory) -> None:
    torch.manual_seed(0)
    processor = tiny_processor("qwen2_vl", tiny_cache(tmp_path_factory))
    model = QMask(
        tiny_vlm("qwen2_vl", processor),
        processor,
        QMaskConfig(tiny="qwen2_vl", head={"size": "small", "channels": 32}),
    )
    image = word_image("OPEN")
    batch = model.collator()([sample(image, R2T, "OPEN", render_mask([("OPEN", BOX)], 112, 112))])
    opt = torch.optim.AdamW(
        [
            {"params": list(model.vlm.parameters()), "lr": 3e-4},
            {"params": list(model.head.parameters()), "lr": 1e-3},
        ],
        weight_decay=0.0,
    )
    # 150 steps at head lr 1e-3: with 60 steps at 3e-3 the head fell into the all-background
    # minimum for 3 of 4 seeds (Dice 0.12 -> 0.08) under the current dependency versions.
    history = []
    for _ in range(150):
        out = model.training_step(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        history.append({k: float(v.detach()) for k, v in out.items()})
    first, last = history[0], history[-1]
    assert last["dice"] > first["dice"] + 0.1, (first, last)
    assert last["loss_mask"] < first["loss_mask"] - 0.3
    assert last["loss_ntp"] < first["loss_ntp"] - 2.0
    result = QMaskPredictor(model, device="cpu", max_new_tokens=6).anchor(image, R2T)
    assert result.answer == "OPEN"
    heat = result.heatmaps[0]
    x1, y1, x2, y2 = BOX
    inside = heat[y1:y2, x1:x2].mean()
    outside = (heat.sum() - heat[y1:y2, x1:x2].sum()) / (heat.size - (y2 - y1) * (x2 - x1))
    assert inside > 2 * outside  # the mask sits on the queried region
