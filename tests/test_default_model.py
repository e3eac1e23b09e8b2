"""The embedded recognizers: ``default`` loads with no arguments, ``tiny`` by name; both read
clean rendered words."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import ocrkit
from ocrkit.models.default import default_model_dir, embedded_model_dir

# Common words in plain dark-on-light renderings (no effects): what a first-time user tries.
WORDS = ["hello", "world", "coffee", "street", "open", "station", "market", "garden",
         "london", "parking", "hotel", "welcome", "exit", "music", "school", "2024"]  # fmt: skip


@pytest.fixture(scope="module")
def model():
    return ocrkit.load_recognizer()


def _renderings() -> list[np.ndarray]:
    from ocrkit.data.render import EffectConfig, RenderConfig, WordRenderer, list_fonts

    fonts = [f for f in list_fonts() if Path(f.path).name == "DejaVuSans.ttf"]
    renderer = WordRenderer(seed=0, fonts=fonts, config=RenderConfig(effects=EffectConfig.none()))
    rng = np.random.default_rng(0)
    return [renderer.render(word, rng) for word in WORDS]


@pytest.mark.parametrize("name", ["default", "tiny"])
def test_embedded_folders_are_small_safetensors_with_a_card(name: str) -> None:
    folder = embedded_model_dir(name)
    weights = folder / "model.safetensors"
    assert weights.stat().st_size <= 40 * 1024 * 1024
    card = (folder / "MODEL_CARD.md").read_text(encoding="utf-8")
    for section in ("Training data", "Recipe", "Accuracy", "Speed"):
        assert section in card
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert config["format"] == "ocrkit-recognizer"


def test_default_is_the_ppocr_model_with_its_license_and_a_cased_charset() -> None:
    folder = default_model_dir()
    assert (folder / "LICENSE").read_text(encoding="utf-8").lstrip().startswith("Apache License")
    notice = (folder / "NOTICE").read_text(encoding="utf-8")
    assert "PP-OCRv6" in notice and "PaddleOCR" in notice
    model = ocrkit.load_recognizer()
    assert model.config["backbone"]["name"] == "ppocrv6_rec_small"
    assert model.decoder.beam_width == 8  # chosen on held-out data: docs/ppocr.md
    assert model.charset.case_sensitive and " " in model.charset and "!" in model.charset
    tiny = ocrkit.load_recognizer("tiny")
    assert tiny.charset.name == "36" and tiny.config["backbone"]["name"] == "vit_tiny"


def test_an_existing_folder_named_like_an_embedded_model_wins(tmp_path, monkeypatch) -> None:
    from ocrkit.models.default import resolve_model_path

    monkeypatch.chdir(tmp_path)
    assert resolve_model_path("tiny") == embedded_model_dir("tiny")
    (tmp_path / "tiny").mkdir()
    assert resolve_model_path("tiny") == Path("tiny")
    with pytest.raises(ValueError, match="no embedded model"):
        embedded_model_dir("huge")


def test_reads_rendered_words(model) -> None:
    predictions = model.recognize(_renderings())
    texts = [p.text.lower() for p in predictions]
    correct = sum(t == w for t, w in zip(texts, WORDS))
    # Clean renderings of common words: the model must read nearly all of them.
    assert correct >= len(WORDS) - 1, list(zip(WORDS, texts))
    assert all(0.0 <= p.confidence <= 1.0 for p in predictions)


def test_cli_recognize_uses_the_embedded_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    from ocrkit.cli import main

    path = tmp_path / "word.png"
    Image.fromarray(_renderings()[0]).save(path)
    assert main(["recognize", str(path), "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["text"].lower() == WORDS[0]
    assert len(record["char_positions"]) == len(record["text"])


def test_character_positions_follow_the_glyphs(model) -> None:
    """A word, and the same word with a blank right half as wide again: the characters keep
    their place in pixels, so their positions (fractions of the width) halve."""
    image = _renderings()[0]
    padded = np.concatenate([image, np.full_like(image, 255)], axis=1)
    plain, wide = model.recognize([image, padded])
    assert plain.text == wide.text and len(plain.char_positions) == len(plain.text)
    assert plain.char_positions == sorted(plain.char_positions)
    assert 0 < plain.char_positions[0] < 0.3 and 0.7 < plain.char_positions[-1] < 1
    np.testing.assert_allclose(wide.char_positions, np.array(plain.char_positions) / 2, atol=0.03)


def test_prediction_details_are_the_json_fields() -> None:
    from ocrkit.types import Prediction

    pred = Prediction("ab", np.float32(0.5), [0.12345678, 1.0], [0.25, 0.75])
    details = pred.details()
    assert details == {
        "confidence": 0.5,
        "char_confidences": [0.123457, 1.0],
        "char_positions": [0.25, 0.75],
    }
    assert type(details["confidence"]) is float  # a numpy scalar would not serialize
    assert Prediction("ab", 0.5, [0.5, 0.5]).details().keys() == {"confidence", "char_confidences"}
