"""TABench's ``--engine ocrkit`` on a rendered page (needs the rapidocr wheel's detector)."""

from __future__ import annotations

import pytest
from ocr_helpers import needs_detector, render_page

from ocrkit.tabench.local import AnchorAnswerer, local_answerer
from ocrkit.tabench.matching import match_regions

pytestmark = needs_detector


@pytest.fixture(scope="module")
def engine():
    import ocrkit.tabench.engines  # noqa: F401  (registers the engines)

    answerer = local_answerer("ocrkit", threads="1", word_boxes="true")  # as --engine-opt gives
    assert isinstance(answerer, AnchorAnswerer)
    return answerer.model


def test_r2t_reads_the_cropped_region(engine) -> None:
    image, boxes = render_page()
    x1, y1, x2, y2 = boxes["WORLD"]
    assert engine.r2t(image, [x1 - 6, y1 - 6, x2 + 6, y2 + 6]) == "WORLD"
    assert engine.r2t(image, [0, 0, 1, 1]) == ""


def test_t2r_finds_the_word_not_the_others(engine) -> None:
    image, boxes = render_page()
    assert engine.t2r(image, "world") == []  # the canonical form keeps case
    found = engine.t2r(image, "WORLD!")  # and drops punctuation
    m = match_regions(found, [boxes["WORLD"]])
    assert (m.tp, m.fp, m.fn) == (1, 0, 0)
    assert engine.t2r(image, "absent") == []


def test_t2r_finds_words_inside_a_line(engine) -> None:
    """Two words detected as one line: the word box is cut from it."""
    import cv2
    import numpy as np

    image = np.full((120, 600, 3), 255, np.uint8)
    cv2.putText(image, "RED APPLE", (20, 80), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (0, 0, 0), 3)
    lines = engine.read_page(image)
    assert [line.text for line in lines] == ["RED APPLE"]
    (w, h), base = cv2.getTextSize("RED APPLE", cv2.FONT_HERSHEY_SIMPLEX, 1.6, 3)
    (rw, _), _ = cv2.getTextSize("RED ", cv2.FONT_HERSHEY_SIMPLEX, 1.6, 3)
    target = [20 + rw, 80 - h, 20 + w, 80 + base]
    m = match_regions(engine.t2r(image, "APPLE"), [target])
    assert (m.tp, m.fp, m.fn) == (1, 0, 0)


def test_engine_db_option_picks_the_preset() -> None:
    from ocrkit.ocr.postprocess import PADDLE_DB, WHEEL_DB
    from ocrkit.tabench.engines.ocrkit import OcrkitEngine

    assert OcrkitEngine(model="tiny", threads=1).reader.detector.db == PADDLE_DB
    assert OcrkitEngine(model="tiny", threads=1, db="wheel").reader.detector.db == WHEEL_DB
    with pytest.raises(ValueError, match="db='nope'"):
        OcrkitEngine(model="tiny", db="nope")
