"""RapidOCR (PP-OCRv4, ONNX Runtime) as an STR :class:`~ocrkit.types.Predictor`.

The ONNX weights ship inside the ``rapidocr-onnxruntime`` wheel, so nothing is downloaded. Only
the recognition model runs here: the input is already a word crop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ocrkit.types import Prediction


def load_rapidocr(threads: int = 0, text_score: float = 0.5) -> Any:
    """A ``rapidocr_onnxruntime.RapidOCR`` instance; a clear error when it is not installed."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:  # optional dependency
        raise ImportError(
            "RapidOCR needs rapidocr-onnxruntime: pip install 'ocrkit[external]'"
        ) from exc
    options: dict[str, Any] = {"text_score": float(text_score)}
    if threads:
        options["intra_op_num_threads"] = int(threads)
    return RapidOCR(**options)


class RapidOCRRecognizer:
    """Reads RGB ``uint8`` word crops with PP-OCRv4's recognizer, batched."""

    name = "rapidocr (PP-OCRv4 rec, onnxruntime)"

    def __init__(self, threads: int = 0, batch_size: int = 32) -> None:
        self.ocr = load_rapidocr(threads)
        self.batch_size = batch_size

    def predict(self, images: Sequence[np.ndarray]) -> list[Prediction]:
        predictions: list[Prediction] = []
        for start in range(0, len(images), self.batch_size):
            chunk = [
                np.ascontiguousarray(im[..., ::-1])
                for im in images[start : start + self.batch_size]
            ]
            results, _ = self.ocr.text_rec(chunk)
            predictions.extend(Prediction(str(text), float(score)) for text, score in results)
        return predictions
