"""Where ocrkit finds the shared real data (benchmarks, examples, optional tests) and its cache."""

from __future__ import annotations

import os
from pathlib import Path


def shared_data_dir() -> Path | None:
    """``$OCRKIT_DATA`` or ``../shared/data`` beside the repository, if it exists."""
    env = os.environ.get("OCRKIT_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[3] / "shared" / "data")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


def cache_dir() -> Path:
    """``$OCRKIT_CACHE`` or ``~/.cache/ocrkit``: rendered data, converted models, features."""
    return Path(os.environ.get("OCRKIT_CACHE", "~/.cache/ocrkit")).expanduser()
