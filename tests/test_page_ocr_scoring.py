"""benchmarks/page_ocr.py: its set loading (FUNSD forms as pages) and ICDAR-2015-style scoring,
on hand-made pages with hand-counted answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_scripts import benchmark_script

from ocrkit.text.protocols import PROTOCOLS


@pytest.fixture(scope="module")
def page_ocr():
    pytest.importorskip("shapely")
    with benchmark_script("page_ocr") as module:
        yield module


def box(x1: float, y1: float, x2: float, y2: float) -> list[list[float]]:
    return [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]


def test_a_funsd_folder_is_read_as_pages_of_words(page_ocr, tmp_path: Path) -> None:
    (tmp_path / "funsd_test" / "annotations").mkdir(parents=True)
    forms = {
        "b": [{"words": [{"box": [0, 0, 10, 5], "text": "Date:"}, {"box": [1, 2, 3, 4], "text": " "}]}],
        "a": [{"words": [{"box": [5, 6, 7, 8], "text": "x"}]}, {"words": []}],
    }  # fmt: skip
    for stem, form in forms.items():
        path = tmp_path / "funsd_test" / "annotations" / f"{stem}.json"
        path.write_text(json.dumps({"form": form}))
    pages = page_ocr.load_set(tmp_path, "funsd_test", 0)
    assert pages == [
        {"image": "images/a.png", "instances": [{"points": box(5, 6, 7, 8), "text": "x", "ignore": False}]},
        {"image": "images/b.png", "instances": [
            {"points": box(0, 0, 10, 5), "text": "Date:", "ignore": False},
            {"points": box(1, 2, 3, 4), "text": "", "ignore": True},  # no text: don't-care
        ]},
    ]  # fmt: skip
    assert page_ocr.load_set(tmp_path, "funsd_test", 1) == pages[:1]


def test_scoring_counts_matches_predictions_and_ground_truth(page_ocr) -> None:
    """Three cared-for words (one whose text the protocol empties) and a don't-care region;
    four predictions: a right reading, a wrong one, one inside the don't-care region (removed)
    and one on the emptied word (a detection, not an end-to-end prediction)."""
    norm = PROTOCOLS.build("parseq36", max_length=None).normalize_prediction
    gts = [
        {"points": box(0, 0, 10, 10), "text": "Cat", "ignore": False},
        {"points": box(20, 0, 30, 10), "text": "dog", "ignore": False},
        {"points": box(40, 0, 50, 10), "text": "--", "ignore": False},  # parseq36 empties it
        {"points": box(60, 0, 80, 10), "text": "###", "ignore": True},
    ]
    preds = [box(0, 0, 10, 9), box(20, 0, 30, 10), box(61, 1, 70, 9), box(40, 0, 50, 10)]
    texts = ["cat!", "dot", "zzz", "x"]
    counts = page_ocr.Counts()
    page_ocr.score_image(counts, preds, texts, gts, norm)
    assert counts.det == [3, 3, 3]  # the don't-care prediction removed; 3 boxes matched
    assert counts.e2e == [1, 2, 2]  # "cat!" == "Cat" under parseq36; the "--" word left out
    assert counts.summary(True)["e2e"] == {"P": 50.0, "R": 50.0, "F": 50.0}
