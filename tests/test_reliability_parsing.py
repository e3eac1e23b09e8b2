"""Answer parsing does bounded, linear work on any input (issue 14, item 8).

No timing assertions: the behaviour that bounds the work is asserted instead (answers are cut at
``MAX_ANSWER_CHARS`` and flagged; reasoning and markup are found by linear scans that give the
same results as before on ordinary answers).
"""

from __future__ import annotations

import pytest

from ocrkit.tabench import parsing
from ocrkit.tabench.adapters import build_adapter
from ocrkit.tabench.parsing import MAX_ANSWER_CHARS, find_boxes, find_text, prepare_answer
from ocrkit.tabench.schema import Query

BOX = '[{"bbox_2d": [1, 2, 3, 4]}]'


def test_long_answers_are_cut_and_flagged():
    text, cut = prepare_answer("x" * (MAX_ANSWER_CHARS + 10))
    assert cut and len(text) == MAX_ANSWER_CHARS
    assert prepare_answer("short") == ("short", False)
    # 200 KB of brackets: a box before the cut is found, one only after it is not read at all
    assert find_boxes(BOX + "[" * 200_000) == [[1.0, 2.0, 3.0, 4.0]]
    assert find_boxes("[" * 200_000 + BOX) is None
    assert find_boxes("{" * 200_000) is None and find_text("[" * 200_000) is not None


def test_reasoning_is_stripped_by_linear_scans():
    # 8000 unclosed openers stay text (the answer after them is still read) ...
    assert find_boxes("<think>" * 8000 + BOX) == [[1.0, 2.0, 3.0, 4.0]]
    # ... closed blocks go, however many, and the final answer is what is read, even when
    # the reasoning alone is longer than the cut
    long_reasoning = "<think>" + "[9, 9, 9, 9] " * 20_000 + "</think>"
    assert find_boxes(long_reasoning + BOX) == [[1.0, 2.0, 3.0, 4.0]]
    assert find_text("<think>a</think>" * 8000 + "Hello") == "Hello"
    assert parsing.strip_reasoning("a<think>x</think>b<think>y</think>c") == "abc"
    assert parsing.strip_reasoning("lost reasoning</think>answer") == "answer"
    assert parsing.strip_reasoning("<think>unclosed") == "<think>unclosed"


@pytest.mark.parametrize(
    ("adapter", "answer"),
    [
        (
            "glm4v",
            "<|begin_of_box|>" * 3000 + "<|begin_of_box|>[[100, 200, 300, 400]]<|end_of_box|>",
        ),  # fmt: skip
        ("deepseek_ocr", "<|det|>" * 8000 + "<|det|>[[100, 200, 300, 400]]<|/det|>"),
    ],
)
def test_family_markup_with_thousands_of_openers(adapter, answer):
    q = Query("t", "x.png", 1000, 1000, "t2r", "p", "w", boxes=[[0, 0, 1, 1]])
    record = build_adapter(adapter).parse(q, answer)
    assert record["valid"] and len(record["boxes"]) == 1 and "truncated" not in record


def test_a_cut_answer_is_flagged_in_the_prediction():
    q = Query("t", "x.png", 100, 100, "t2r", "p", "w", boxes=[[0, 0, 1, 1]])
    record = build_adapter("json").parse(q, BOX + " " * MAX_ANSWER_CHARS)
    assert record["valid"] and record["truncated"] is True
