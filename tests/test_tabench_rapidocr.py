"""The RapidOCR engine (PP-OCRv4 in the wheel, nothing downloaded) on a rendered image."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("rapidocr_onnxruntime")

from ocrkit.tabench.local import AnchorAnswerer, local_answerer  # noqa: E402
from ocrkit.tabench.matching import match_regions  # noqa: E402


@pytest.fixture(scope="module")
def page():
    """White 480x160 image with 'HELLO' at (20, 100) and 'WORLD' at (260, 100)."""
    image = np.full((160, 480, 3), 255, np.uint8)
    boxes = {}
    for word, x in (("HELLO", 20), ("WORLD", 260)):
        (w, h), base = cv2.getTextSize(word, cv2.FONT_HERSHEY_SIMPLEX, 1.6, 3)
        cv2.putText(image, word, (x, 100), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (0, 0, 0), 3)
        boxes[word] = [x, 100 - h, x + w, 100 + base]
    return image, boxes


@pytest.fixture(scope="module")
def engine():
    import ocrkit.tabench.engines  # noqa: F401

    answerer = local_answerer("rapidocr", threads=1)
    assert isinstance(answerer, AnchorAnswerer)
    return answerer.model


def test_r2t_reads_the_cropped_region(page, engine):
    image, boxes = page
    x1, y1, x2, y2 = boxes["WORLD"]
    assert engine.r2t(image, [x1 - 6, y1 - 6, x2 + 6, y2 + 6]) == "WORLD"
    assert engine.r2t(image, [0, 0, 1, 1]) == ""


def test_t2r_finds_the_word_not_the_other(page, engine):
    image, boxes = page
    found = engine.t2r(image, "WORLD!")  # canonical match ignores the punctuation
    m = match_regions(found, [boxes["WORLD"]])
    assert (m.tp, m.fp, m.fn) == (1, 0, 0)
    assert engine.t2r(image, "absent") == []
