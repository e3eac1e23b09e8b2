"""``--decode KEY=VALUE`` reaches the decoder from ``ocrkit recognize`` and ``ocrkit eval``."""

import json

import cv2
import numpy as np
import pytest
import torch

from ocrkit.cli import main
from ocrkit.models import Recognizer

TINY = {
    "backbone": {"name": "vit_tiny", "embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": 8},
    "decoder": {"name": "ar", "embed_dim": 32, "depth": 1, "num_heads": 2},
    "charset": "36",
    "max_length": 8,
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny")
    Recognizer.from_config(TINY).save_pretrained(path)
    image = np.random.default_rng(0).integers(0, 255, (32, 100, 3), dtype=np.uint8)
    cv2.imwrite(str(path / "word.png"), image)
    return path


def _recognize(model_dir, capsys, *extra):
    assert main(["recognize", "--model", str(model_dir), "--json", str(model_dir / "word.png"),
                 *extra]) == 0  # fmt: skip
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_decode_option_reaches_the_decoder(model_dir, capsys, monkeypatch):
    seen = {}
    original = Recognizer.forward

    def spy(self, images, **kwargs):
        seen.update(kwargs)
        return original(self, images, **kwargs)

    monkeypatch.setattr(Recognizer, "forward", spy)
    cached = _recognize(model_dir, capsys)
    assert seen == {}
    uncached = _recognize(
        model_dir, capsys, "--decode", "use_cache=false", "--decode", "max_length=8"
    )
    assert seen == {"use_cache": False, "max_length": 8}  # YAML-typed values
    assert uncached["text"] == cached["text"]  # cached and uncached greedy decoding agree
    assert uncached["confidence"] == pytest.approx(cached["confidence"], rel=1e-4)


def test_bad_decode_options_are_clear_errors(model_dir, capsys):
    image = str(model_dir / "word.png")
    assert main(["recognize", "--model", str(model_dir), image, "--decode", "use_cache"]) == 1
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["recognize", "--model", str(model_dir), image, "--decode", "samplr=x"]) == 1
    assert "does not accept" in capsys.readouterr().err
