"""The runner's append-only response cache: a killed run resumes without asking again.

One JSON line per answered query, appended, flushed and fsynced as soon as the answer arrives.
Reading tolerates a torn last line (the process died mid write): it is skipped and counted, and
the query is simply asked again. Entries are keyed by :func:`cache_key`, so a changed prompt,
model or adapter never reuses a stale answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any


def cache_key(*parts: Any) -> str:
    """A stable hash of the things an answer depends on (query id, prompt, model, ...)."""
    blob = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """Append-only JSONL of ``{"key", "id", ...answer}`` records; thread-safe appends."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.entries: dict[str, dict[str, Any]] = {}
        self.bad_lines = 0
        self._lock = threading.Lock()
        if self.path.exists():
            self._load()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _load(self) -> None:
        with open(self.path, "rb") as f:
            data = f.read()
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                self.entries[record["key"]] = record
            except (ValueError, KeyError, TypeError):
                self.bad_lines += 1
        if data and not data.endswith(b"\n"):
            # a torn tail: start the next record on a fresh line
            with open(self.path, "ab") as f:
                f.write(b"\n")

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
