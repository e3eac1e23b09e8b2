"""The runner's append-only response cache: a killed run resumes without asking again.

One JSON line per answered query, appended, flushed and fsynced as soon as the answer arrives.
Reading tolerates any bad line (a torn last line when the process died mid write, a line that is
not UTF-8, not JSON, nested too deeply, or not a record): it is skipped and its number recorded,
and the query is simply asked again; a bad line never blocks a resume. Entries are keyed by :func:`cache_key`, so a changed prompt,
model or adapter never reuses a stale answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from ocrkit.tabench.jsonl import parse_line


def cache_key(*parts: Any) -> str:
    """A stable hash of the things an answer depends on (query id, prompt, model, ...)."""
    blob = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """Append-only JSONL of ``{"key", "id", ...answer}`` records; thread-safe appends."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.entries: dict[str, dict[str, Any]] = {}
        self.bad_line_numbers: list[int] = []
        self._lock = threading.Lock()
        if self.path.exists():
            self._load()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _load(self) -> None:
        with open(self.path, "rb") as f:
            data = f.read()
        for number, line in enumerate(data.split(b"\n"), 1):
            if not line.strip():
                continue
            record, _ = parse_line(line)
            key = record.get("key") if isinstance(record, dict) else None
            if isinstance(key, str):
                self.entries[key] = record
            else:  # torn, not UTF-8, too deep, not a record: ask that query again
                self.bad_line_numbers.append(number)
        if data and not data.endswith(b"\n"):
            # a torn tail: start the next record on a fresh line
            with open(self.path, "ab") as f:
                f.write(b"\n")

    @property
    def bad_lines(self) -> int:
        return len(self.bad_line_numbers)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: str) -> dict[str, Any] | None:
        return self.entries.get(key)

    def put(self, key: str, record: dict[str, Any]) -> None:
        """Append one record durably (flush + fsync) before returning."""
        record = {"key": key, **record}
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            with open(self.path, "ab") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            self.entries[key] = record
