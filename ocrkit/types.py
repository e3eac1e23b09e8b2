"""Plain data types shared across ocrkit: samples, predictions and the predictor protocol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass
class Sample:
    """One word image: RGB ``uint8`` array (H, W, 3), its label (None when unlabeled) and a key.

    ``key`` identifies the sample in its source (a path relative to the set, an LMDB index) so
    predictions and reports can point back at it.
    """

    image: np.ndarray
    label: str | None
    key: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prediction:
    """A recognizer's answer for one image.

    ``char_positions``: each character's centre along the image's width, 0 (left edge) to 1
    (right edge), from the CTC alignment (empty for decoders without one). ``error`` says why an
    input could not be read (``text`` is then empty and ``confidence`` 0, so results stay
    aligned with the inputs)."""

    text: str
    confidence: float = 1.0
    char_confidences: list[float] = field(default_factory=list)
    char_positions: list[float] = field(default_factory=list)
    error: str | None = None

    def details(self) -> dict[str, Any]:
        """The confidences (rounded to 6 decimals), and the positions where the decoder gives
        them, as JSON-ready fields: what ``ocrkit recognize --json`` and ``ocrkit serve`` add
        to the text."""
        fields: dict[str, Any] = {
            "confidence": round(float(self.confidence), 6),
            "char_confidences": [round(float(c), 6) for c in self.char_confidences],
        }
        if self.char_positions:  # CTC models: each character's centre, 0..1 of the width
            fields["char_positions"] = [float(p) for p in self.char_positions]
        return fields


@runtime_checkable
class Predictor(Protocol):
    """Anything that reads a batch of RGB ``uint8`` images into predictions.

    Recognizers, predictions files, external OCR engines and test stubs all meet the evaluator
    through this one method.
    """

    def predict(self, images: Sequence[np.ndarray]) -> list[Prediction]: ...
