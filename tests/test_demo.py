"""``ocrkit demo`` end to end (render -> recognize -> score) with the external RapidOCR engine."""

import json

import numpy as np
import pytest

from ocrkit.cli import main

pytest.importorskip("rapidocr_onnxruntime")


def test_rapidocr_predictor_reads_rendered_words():
    from ocrkit.data.render import EffectConfig, RenderConfig, WordRenderer
    from ocrkit.external.rapidocr import RapidOCRRecognizer

    clean = WordRenderer(seed=3, config=RenderConfig(effects=EffectConfig.none()))
    words = ["window", "coffee", "garden"]
    images = [clean.render(w) for w in words]
    predictions = RapidOCRRecognizer().predict(images + [np.zeros((32, 100, 3), np.uint8)])
    assert [p.text.lower() for p in predictions[:3]] == words
    assert all(0.5 < p.confidence <= 1.0 for p in predictions[:3])
    assert predictions[3].text == ""  # a black image reads as nothing, without an error


def test_demo_renders_recognizes_and_reports(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OCRKIT_DATA", str(tmp_path / "absent"))  # synthetic only: fast, hermetic
    out = tmp_path / "demo"
    assert main(["demo", "--num", "8", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["protocol"] == "parseq36"
    assert report["sets"]["synthetic"]["samples"] == 8
    # the renderer's words are clean enough that a real OCR engine reads most of them
    assert report["sets"]["synthetic"]["accuracy"] >= 50.0
    assert (out / "predictions.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "combined" in printed
    assert "images/s: decoding the image files and recognition" in printed
    assert "the model load above is not included" in printed
