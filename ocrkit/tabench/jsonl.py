"""Reading TABench JSONL files (benches, predictions, the response cache) line by line, safely.

Every line is decoded and parsed on its own: a line that is not UTF-8, not JSON, or nested too
deeply for the parser gives a reason instead of an exception, so callers can name the file and
line (benches) or count and skip it (predictions, cache).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_ID = re.compile(rb'"id"\s*:\s*(?:"((?:[^"\\\n]|\\.){1,200})"|(-?\d{1,30})\b)')


def iter_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """``(line number, raw bytes)`` of every non-blank line."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            if raw.strip():
                yield number, raw


def parse_line(raw: bytes) -> tuple[Any, str | None]:
    """``(value, None)``, or ``(None, reason)`` when the line cannot be read."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not valid UTF-8 (byte {exc.start})"
    try:
        return json.loads(text), None
    except RecursionError:
        return None, "JSON nested too deeply"
    except ValueError as exc:  # JSONDecodeError, or an integer too long to convert
        return None, f"not valid JSON ({getattr(exc, 'msg', exc)})"


def recover_id(raw: bytes) -> str | None:
    """The ``"id"`` of a line that could not be parsed, when it can still be seen (else None)."""
    m = _ID.search(raw)
    if m is None:
        return None
    if m.group(2) is not None:
        return m.group(2).decode("ascii")
    try:
        value = json.loads(b'"' + m.group(1) + b'"')
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def line_list(numbers: list[int], limit: int = 10) -> str:
    """``lines 3, 5, 9`` (the first ``limit``, then ``...``)."""
    head = ", ".join(str(n) for n in numbers[:limit])
    return f"line{'s' if len(numbers) > 1 else ''} {head}{', ...' if len(numbers) > limit else ''}"
