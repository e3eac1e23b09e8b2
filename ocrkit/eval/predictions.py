"""Prediction files: ``image_path<TAB>prediction[<TAB>confidence]`` lines, paths as in the set."""

from __future__ import annotations

import math
from pathlib import Path


def read_predictions(path: str | Path) -> dict[str, tuple[str, float | None]]:
    """Map each key (path relative to the set directory) to ``(prediction, confidence)``.

    A line without a tab is a key with an empty prediction; a line without a confidence has
    ``None`` (the report then averages the confidences given, or shows none); an unparsable or
    non-finite one (``nan``, ``inf``) is an error naming the line. Keys are normalized to forward slashes without a leading ``./``.
    """
    predictions: dict[str, tuple[str, float | None]] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            parts = line.split("\t")
            key = normalize_key(parts[0])
            text = parts[1] if len(parts) > 1 else ""
            confidence: float | None = None
            if len(parts) > 2:
                try:
                    confidence = float(parts[2])
                except ValueError:
                    raise ValueError(
                        f"{path}:{number}: confidence {parts[2]!r} is not a number"
                    ) from None
                if not math.isfinite(confidence):
                    raise ValueError(
                        f"{path}:{number}: confidence {parts[2]!r} is not a finite number"
                    )
            predictions[key] = (text, confidence)
    return predictions


def normalize_key(key: str) -> str:
    key = key.strip().replace("\\", "/")
    while key.startswith("./"):
        key = key[2:]
    return key
