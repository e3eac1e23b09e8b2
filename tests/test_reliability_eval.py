"""Evaluation and model loading that cannot be fooled (issue 14 item 10, issue 17 items 4-5)."""

from __future__ import annotations

import json

import pytest
import torch
from word_fixtures import word_image

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


def _four_images_two_broken(root):
    """A set of 4 word images: 1 and 3 readable, 2 corrupt bytes, 4 missing."""
    import cv2

    (root / "images").mkdir(parents=True)
    words = ["cat", "dog", "sun", "pie"]
    cv2.imwrite(str(root / "images" / "1.png"), word_image("cat"))
    (root / "images" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    cv2.imwrite(str(root / "images" / "3.png"), word_image("sun"))
    lines = [f"images/{i}.png\t{w}" for i, w in enumerate(words, 1)]
    (root / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


class _Oracle:
    """Reads the word back from the fixture's pixels (the readable images are known)."""

    def predict(self, images, **_):
        from ocrkit.types import Prediction

        known = {w: word_image(w) for w in ("cat", "dog", "sun", "pie")}
        out = []
        for im in images:
            word = next((w for w, ref in known.items() if (im == ref).all()), "")
            out.append(Prediction(word, 0.9))
        return out


def test_unreadable_images_count_as_wrong_by_default(tmp_path, monkeypatch, capsys):
    import ocrkit.cli.commands.export as export
    from ocrkit.cli import main

    data = _four_images_two_broken(tmp_path / "four")
    monkeypatch.setattr(export, "load_model", lambda *a, **k: _Oracle())
    out = tmp_path / "r.json"
    assert main(["eval", "--model", "x", "--data", str(data), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    row = next(line.split() for line in text.splitlines() if line.startswith("four "))
    assert row[1:3] == ["4", "50.00"]
    assert "four: 2 unreadable images scored as wrong" in text
    report = json.loads(out.read_text())
    assert report["unreadable_images"] == "scored_wrong"
    assert report["sets"]["four"]["samples"] == 4 and report["sets"]["four"]["skipped_images"] == 2
    # excluded explicitly: the header says so
    assert main(["eval", "--model", "x", "--data", str(data), "--exclude-unreadable"]) == 0
    text = capsys.readouterr().out
    row = next(line.split() for line in text.splitlines() if line.startswith("four "))
    assert row[1:3] == ["2", "100.00"]
    assert "unreadable images EXCLUDED (--exclude-unreadable): 2 of 4" in text.splitlines()[1]


@pytest.mark.parametrize("argv", [[], ["--model", "tiny"]])
def test_eval_uses_the_embedded_models_like_recognize(tmp_path, capsys, argv):
    from ocrkit.cli import main

    data = _four_images_two_broken(tmp_path / "four")
    assert main(["eval", *argv, "--data", str(data)]) == 0
    text = capsys.readouterr().out
    assert f"source: {argv[-1] if argv else 'default'}" in text
    row = next(line.split() for line in text.splitlines() if line.startswith("four "))
    assert row[1] == "4"
