"""The task wording and answer format that TABench and Q-Mask anchoring share.

Q-Mask paper (Xu et al., arXiv 2604.00161), Supplementary S1: R2T asks ``What is the text at
location [x1, y1, x2, y2]?`` and is answered with the transcript; T2R asks ``Where is "TEXT"
located in the image?`` and is answered with a JSON list of ``{"bbox_2d": [x1, y1, x2, y2]}``.
Bench queries (:mod:`ocrkit.tabench.builder`, :mod:`ocrkit.tabench.schema`), the adapters'
``paper`` prompt set, Q-Mask training instances (:mod:`ocrkit.anchoring.generate`), coordinate
rewriting (:mod:`ocrkit.anchoring.coords`) and the ``qmask`` engine all take their wording from
here, so a model is benchmarked with the very prompts it was trained on.

A leaf: it imports no other ocrkit module. Its siblings :mod:`ocrkit.tabench.parsing` (lenient
readers for any model's answers) and :mod:`ocrkit.tabench.normalize` (string normalisation)
are leaves too; together they are the text both packages agree on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

R2T_PROMPT = "What is the text at location [{x1}, {y1}, {x2}, {y2}]?"
T2R_PROMPT = 'Where is "{text}" located in the image?'
READ_PROMPT = "Read all the text in the image."  # VQA without mask (anchoring ``read``)
VQA_PROMPT = 'What is the value of the field "{question}"?'  # FUNSD key-value (``vqa``)
T2R_FORMAT_HINT = 'Answer in JSON: [{{"bbox_2d": [x_min, y_min, x_max, y_max]}}, ...].'


def r2t_prompt(box: Sequence[float]) -> str:
    """The S1 Region-to-Text prompt for a box (coordinates rounded to integers)."""
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    return R2T_PROMPT.format(x1=x1, y1=y1, x2=x2, y2=y2)


def t2r_prompt(text: str) -> str:
    """The S1 Text-to-Region prompt."""
    return T2R_PROMPT.format(text=text)


def vqa_prompt(question: str) -> str:
    """The key-value question for a form field (its label without the trailing colon)."""
    return VQA_PROMPT.format(question=question.strip().rstrip(":").strip())


def t2r_answer(boxes: Sequence[Sequence[float]]) -> str:
    """The T2R answer text: a JSON list of ``{"bbox_2d": [x1, y1, x2, y2]}`` (integers)."""
    return json.dumps([{"bbox_2d": [int(round(v)) for v in b]} for b in boxes])


def read_t2r_answer(answer: str) -> list[Any] | None:
    """The boxes of an answer written exactly as :func:`t2r_answer` writes them, else None
    (model answers in any other form are read by :func:`ocrkit.tabench.parsing.find_boxes`)."""
    try:
        return [item["bbox_2d"] for item in json.loads(answer)]
    except (ValueError, TypeError, KeyError):
        return None
