"""Hand-computed TABench scores: R2T normalization, T2R matching, Overall, breakdowns."""

from __future__ import annotations

import pytest

from ocrkit.tabench.adapters import build_adapter
from ocrkit.tabench.matching import match_regions, prf
from ocrkit.tabench.normalize import canonicalize, normalize_r2t
from ocrkit.tabench.schema import Query
from ocrkit.tabench.scoring import load_predictions, score


def r2t(qid: str, text: str, category: str = "scene") -> Query:
    return Query(qid, "x.png", 100, 100, "r2t", "p", text, box=[0, 0, 10, 10], category=category)


def t2r(qid: str, boxes, category: str = "doc") -> Query:
    return Query(qid, "x.png", 100, 100, "t2r", "p", "word", boxes=boxes, category=category)


TRIANGLE = [[0, 0], [10, 0], [0, 10]]  # area 50, inside [0, 0, 10, 10]

BENCH = [
    r2t("r1", "Hello"),  # answered "hello": wrong (case counts)
    r2t("r2", "ＡＢＣ"),  # full-width, NFKC -> "ABC": right
    r2t("r3", "你好。"),  # CJK full stop variant: right
    r2t("r4", "a  b"),  # whitespace collapsed, zero-width removed: right
    r2t("r5", "x"),  # empty answer: counted as empty
    t2r("t1", [[0, 0, 10, 10], [20, 0, 30, 10]]),  # two merged instances, both found: TP 2
    t2r("t2", [[0, 0, 10, 10]]),  # one right + one stray box: TP 1, FP 1
    t2r("t3", [[0, 0, 10, 10], [10, 0, 20, 10]]),  # one box over both, IoU 0.5 each: TP 1, FN 1
    t2r("t4", [TRIANGLE]),  # polygon target, box prediction, IoU exactly 0.5: TP 1
    t2r("t5", [[50, 50, 60, 60]]),  # no prediction: FN 1 (missing)
]
PREDICTIONS = {
    "r1": {"id": "r1", "text": "hello"},
    "r2": {"id": "r2", "text": "ABC"},
    "r3": {"id": "r3", "text": "你好."},
    "r4": {"id": "r4", "text": " a b\u200b"},
    "r5": {"id": "r5", "text": ""},
    "t1": {"id": "t1", "boxes": [[20, 0, 30, 10], [0, 0, 10, 10]]},
    "t2": {"id": "t2", "boxes": [[0, 0, 10, 10], [50, 50, 60, 60]]},
    "t3": {"id": "t3", "boxes": [[0, 0, 20, 10]]},
    "t4": {"id": "t4", "boxes": [[0, 0, 10, 10]]},
}


def test_hand_computed_scores():
    result = score(BENCH, PREDICTIONS)
    assert result["r2t"] == {"n": 5, "correct": 3, "accuracy": pytest.approx(60.0)}
    t = result["t2r"]
    assert (t["n"], t["tp"], t["fp"], t["fn"]) == (5, 5, 1, 2)
    assert t["precision"] == pytest.approx(100 * 5 / 6)
    assert t["recall"] == pytest.approx(100 * 5 / 7)
    assert t["f1"] == pytest.approx(100 * 10 / 13)
    assert result["overall"] == pytest.approx((60 + 100 * 10 / 13) / 2)
    assert result["unparsable"] == {"r2t": 0, "t2r": 0}
    assert result["empty"] == {"r2t": 1, "t2r": 0}
    assert result["missing"] == {"r2t": 0, "t2r": 1}
    # breakdowns: category "scene" holds the R2T queries, "doc" the T2R ones
    scene, doc = result["by_category"]["scene"], result["by_category"]["doc"]
    assert scene["r2t"]["accuracy"] == pytest.approx(60.0) and scene["t2r"]["n"] == 0
    assert scene["overall"] == pytest.approx(30.0)  # no T2R output in this slice: F1 0
    assert doc["r2t"]["n"] == 0 and doc["t2r"]["tp"] == 5
    assert set(result["by_language"]) == {"en"}


def test_strict_threshold_drops_exact_half_overlaps():
    result = score(BENCH, PREDICTIONS, strict=True)
    t = result["t2r"]
    # t3: no match (FP 1, FN 2); t4: no match (FP 1, FN 1)
    assert (t["tp"], t["fp"], t["fn"]) == (3, 3, 4)
    assert t["f1"] == pytest.approx(100 * 6 / 13)


def test_match_orders_differ_as_documented():
    targets = [[0, 0, 10, 10], [4, 0, 14, 10]]
    preds = [[3, 0, 13, 10], [0, 0, 10, 10]]  # p0: IoU .538 with A, .818 with B; p1 = A
    icdar = match_regions(preds, targets, order="icdar")
    assert (icdar.tp, icdar.fp, icdar.fn) == (1, 1, 1)  # A takes p0 first, B gets nothing
    best = match_regions(preds, targets, order="iou")
    assert (best.tp, best.fp, best.fn) == (2, 0, 0)
    assert set(best.pairs) == {(1, 0), (0, 1)}


def test_one_prediction_never_matches_two_targets():
    m = match_regions([[0, 0, 10, 10]], [[0, 0, 10, 10], [0, 0, 10, 10]])
    assert (m.tp, m.fp, m.fn) == (1, 0, 1)


def test_both_directions_missing_scores_zero():
    result = score(BENCH, {})
    assert result["overall"] == 0.0
    assert result["r2t"]["accuracy"] == 0.0 and result["t2r"]["f1"] == 0.0
    assert result["missing"] == {"r2t": 5, "t2r": 5}


def test_raw_answers_parsed_by_adapter_and_malformed_counted():
    preds = {
        "r2": {"id": "r2", "raw": '```json\n{"text": "ABC"}\n```'},
        "r3": {"id": "r3", "raw": 42},  # not even a string
        "t1": {"id": "t1", "raw": 'Here: [{"bbox_2d": [0,0,10,10]}, {"bbox_2d": [20,0,30,10]}]'},
        "t2": {"id": "t2", "raw": "I cannot find it."},
        "t3": {"id": "t3", "boxes": [[0, 0, "a", 10]]},  # malformed box
        "t4": {"id": "t4", "boxes": []},  # well-formed "nothing found"
    }
    result = score(BENCH, preds, adapter=build_adapter("json"))
    assert result["r2t"]["correct"] == 1
    assert result["unparsable"] == {"r2t": 1, "t2r": 2}
    assert result["empty"] == {"r2t": 0, "t2r": 1}
    assert result["missing"] == {"r2t": 3, "t2r": 1}
    assert result["t2r"]["tp"] == 2 and result["t2r"]["fp"] == 0
    with pytest.raises(ValueError, match="--adapter"):
        score(BENCH, preds)


def test_prf_and_normalizers():
    assert prf(0, 0, 0) == (0.0, 0.0, 0.0)
    assert prf(1, 1, 0) == (50.0, 100.0, pytest.approx(200 / 3))
    assert normalize_r2t("  Ａ\u200bB  「x」 ") == 'AB "x"'
    assert canonicalize("Singapore's no.1") == "Singaporesno1"
    assert canonicalize("《你好，世界！》") == "你好世界"
    assert canonicalize("...") == ""


def test_load_predictions_skips_torn_lines(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a", "text": "x"}\n[1, 2]\n{"id": "b", "te', encoding="utf-8")
    records, bad = load_predictions(path)
    assert bad == [2, 3]  # the torn line's id is still readable: it scores as unparsable
    assert records == {
        "a": {"id": "a", "text": "x"},
        "b": {"id": "b", "valid": False, "bad_line": 3},
    }
