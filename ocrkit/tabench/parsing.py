"""Lenient readers for model answers: boxes and transcripts out of free text.

Models wrap JSON in code fences, add a sentence before it, list several boxes or answer in their
own markup. These helpers find what is there and never raise: anything unreadable gives None,
which the scorer counts as an unparsable (empty) answer.

The work is bounded and linear in the answer's length: reasoning blocks and markup are found
with ``str.find`` scans (no backtracking regex over the whole answer), an answer is cut at
``MAX_ANSWER_CHARS`` after its reasoning is removed (:func:`prepare_answer` says when), and at
most ``MAX_JSON_FAILURES`` failed JSON starts are tried per text before the regex fallback.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from typing import Any

MAX_ANSWER_CHARS = 65536  # a 512-token answer is a few KiB
MAX_JSON_FAILURES = 256
_FENCE = re.compile(r"```[a-zA-Z0-9_-]{0,32}[ \t]*\n?(.*?)```", re.S)
_JSON_START = re.compile(r"[\[{]")
_SPECIAL = re.compile(r"<\|[^|<>]{1,40}\|>")
_NUM = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_BRACKET4 = re.compile(rf"\[\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*\]")
_PAIRS = re.compile(rf"\(\s*({_NUM})\s*,\s*({_NUM})\s*\)\s*,?\s*\(\s*({_NUM})\s*,\s*({_NUM})\s*\)")
DEFAULT_BOX_KEYS = ("bbox_2d", "box_2d", "bbox", "box", "boxes", "coordinates")
TEXT_KEYS = ("text", "answer", "label", "content", "transcription")


def strip_reasoning(raw: str) -> str:
    """Drop ``<think>...</think>`` blocks (and an unclosed leading one), in one linear scan."""
    parts = between(raw, "<think>", "</think>", keep_outside=True)
    raw = "".join(parts)
    cut = raw.rfind("</think>")
    return raw[cut + len("</think>") :] if cut >= 0 else raw


def between(text: str, left: str, right: str, keep_outside: bool = False) -> list[str]:
    """The pieces of ``text`` inside ``left ... right`` pairs (the nearest ``right`` closes),
    or with ``keep_outside`` the pieces outside them; linear (``str.find``), never regex."""
    inside: list[str] = []
    outside: list[str] = []
    pos = 0
    while True:
        start = text.find(left, pos)
        end = text.find(right, start + len(left)) if start >= 0 else -1
        if end < 0:  # no further complete pair
            outside.append(text[pos:])
            break
        outside.append(text[pos:start])
        inside.append(text[start + len(left) : end])
        pos = end + len(right)
    return outside if keep_outside else inside


def prepare_answer(raw: str) -> tuple[str, bool]:
    """The answer without reasoning, cut to ``MAX_ANSWER_CHARS``; and whether it was cut."""
    text = strip_reasoning(raw)
    if len(text) > MAX_ANSWER_CHARS:
        return text[:MAX_ANSWER_CHARS], True
    return text, False


def fenced_blocks(raw: str) -> list[str]:
    """The contents of Markdown code fences, in order."""
    return [m.group(1) for m in _FENCE.finditer(raw)]


def iter_json(raw: str) -> Iterator[Any]:
    """Every JSON value that starts at a ``[`` or ``{`` in the code fences, else in ``raw``."""
    decoder = json.JSONDecoder()
    for text in fenced_blocks(raw) or [raw]:
        pos = failures = 0
        for m in _JSON_START.finditer(text):
            start = m.start()
            if start < pos:
                continue
            try:
                value, end = decoder.raw_decode(text, start)
            except (json.JSONDecodeError, RecursionError):
                failures += 1
                if failures >= MAX_JSON_FAILURES:
                    break
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
        text, _ = prepare_answer(raw)
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
        text = _SPECIAL.sub("", prepare_answer(raw)[0]).strip()
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
