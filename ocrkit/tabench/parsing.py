"""Lenient readers for model answers: boxes and transcripts out of free text.

Models wrap JSON in code fences, add a sentence before it, list several boxes or answer in their
own markup. These helpers find what is there and never raise: anything unreadable gives None,
which the scorer counts as an unparsable (empty) answer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from typing import Any

_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.S)
_THINK = re.compile(r"<think>.*?</think>", re.S)
_SPECIAL = re.compile(r"<\|[^|<>]{1,40}\|>")
_NUM = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_BRACKET4 = re.compile(rf"\[\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*\]")
_PAIRS = re.compile(rf"\(\s*({_NUM})\s*,\s*({_NUM})\s*\)\s*,?\s*\(\s*({_NUM})\s*,\s*({_NUM})\s*\)")
DEFAULT_BOX_KEYS = ("bbox_2d", "box_2d", "bbox", "box", "boxes", "coordinates")
TEXT_KEYS = ("text", "answer", "label", "content", "transcription")


def strip_reasoning(raw: str) -> str:
    """Drop ``<think>...</think>`` blocks (and an unclosed leading one)."""
    raw = _THINK.sub("", raw)
    return raw.split("</think>", 1)[1] if "</think>" in raw else raw


def fenced_blocks(raw: str) -> list[str]:
    """The contents of Markdown code fences, in order."""
    return [m.group(1) for m in _FENCE.finditer(raw)]


def iter_json(raw: str) -> Iterator[Any]:
    """Every JSON value that starts at a ``[`` or ``{`` in the code fences, else in ``raw``."""
    decoder = json.JSONDecoder()
    for text in fenced_blocks(raw) or [raw]:
        pos = 0
        while True:
            starts = [i for i in (text.find("[", pos), text.find("{", pos)) if i >= 0]
            if not starts:
                break
            start = min(starts)
            try:
                value, end = decoder.raw_decode(text, start)
            except (json.JSONDecodeError, RecursionError):
                pos = start + 1
                continue
            yield value
            pos = end


def _as_box(value: Any) -> list[float] | None:
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return None
    box = [float(v) for v in value]
    return box if all(math.isfinite(v) for v in box) else None


def _collect(value: Any, keys: Sequence[str], out: list[list[float]]) -> None:
    box = _as_box(value)
    if box is not None:
        out.append(box)
    elif isinstance(value, dict):
        keyed = [k for k in keys if k in value]
        for k in keyed or list(value):
            _collect(value[k], keys, out)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect(item, keys, out)


def find_boxes(raw: Any, keys: Sequence[str] = DEFAULT_BOX_KEYS) -> list[list[float]] | None:
    """All 4-number boxes in ``raw`` in reading order, or None when there is none.

    JSON values are read first (``{"bbox_2d": [...]}``, bare lists, nested lists); when no JSON
    holds a box, ``[a, b, c, d]`` and ``(a,b),(c,d)`` patterns in the text are used.
    """
    try:
        if not isinstance(raw, str):
            return None
        text = strip_reasoning(raw)
        found: list[list[float]] = []
        for value in iter_json(text):
            _collect(value, keys, found)
        if not found:
            for m in _BRACKET4.finditer(text):
                found.append([float(g) for g in m.groups()])
            for m in _PAIRS.finditer(text):
                found.append([float(g) for g in m.groups()])
        found = [b for b in found if all(math.isfinite(v) for v in b)]
        return found or None
    except Exception:  # a parser must never take the run down
        return None


def find_text(raw: Any) -> str | None:
    """The transcript in an R2T answer, or None when the answer is empty or not a string.

    Reasoning blocks, chat special tokens and code fences are removed; a JSON string or an
    object with a ``text``/``answer``/``label`` field gives its value; surrounding quotes go.
    """
    try:
        if not isinstance(raw, str):
            return None
        text = _SPECIAL.sub("", strip_reasoning(raw)).strip()
        blocks = fenced_blocks(text)
        if blocks:
            text = blocks[0].strip()
        if text[:1] in '[{"':
            try:
                value = json.loads(text)
            except (json.JSONDecodeError, RecursionError):
                value = None
            value = _text_from_json(value)
            if value is not None:
                text = value
        text = text.strip()
        for left, right in (('"', '"'), ("'", "'"), ("\u201c", "\u201d"), ("`", "`")):
            if len(text) >= 2 and text.startswith(left) and text.endswith(right):
                text = text[1:-1].strip()
        return text or None
    except Exception:
        return None


def _text_from_json(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) == 1:
        return _text_from_json(value[0])
    if isinstance(value, dict):
        for k in TEXT_KEYS:
            if isinstance(value.get(k), str):
                return value[k]
    return None
