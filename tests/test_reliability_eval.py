"""Evaluation and model loading that cannot be fooled (issue 14 item 10, issue 17 items 4-5)."""

from __future__ import annotations

import json

import pytest
import torch

from ocrkit.eval.predictions import read_predictions


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf"])
def test_non_finite_confidences_are_refused_with_the_line(tmp_path, value):
    pred = tmp_path / "pred.tsv"
    pred.write_text(f"images/1.png\tabc\t0.5\nimages/2.png\tde\t{value}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"pred.tsv:2: confidence '{value}' is not a finite"):
        read_predictions(pred)


def test_model_folder_config_cannot_turn_on_trust_pickle(tmp_path, monkeypatch, caplog):
    from ocrkit.models import Recognizer
    from ocrkit.models.backbones import timm_backbone

    config = {
        "backbone": {"name": "timm", "model_name": "resnet10t"},
        "decoder": {"name": "ctc"},
        "charset": "36",
        "img_size": [32, 128],
    }
    Recognizer.from_config(config).save_pretrained(tmp_path / "m")
    torch.save({"x": torch.zeros(1)}, tmp_path / "payload.pt")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    saved["backbone"].update(checkpoint_path=str(tmp_path / "payload.pt"), trust_pickle=True)
    (tmp_path / "m" / "config.json").write_text(json.dumps(saved))
    calls = []
    monkeypatch.setattr(
        timm_backbone, "load_state_dict", lambda *a, **k: calls.append((a, k)) or {}
    )
    model = Recognizer.from_pretrained(tmp_path / "m")
    assert calls == []  # the pickle named by the folder was never opened
    assert "checkpoint_path" not in model.config["backbone"]
    assert "trust_pickle" in caplog.text and "ignored" in caplog.text
