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


class RapidOCRv6Recognizer:
    """Reads RGB ``uint8`` word crops with the ``rapidocr`` 3.x wheel's own recognition pipeline
    (PP-OCRv6 small rec, onnxruntime): its preprocessing, its batching (``rec_batch_num``
    images sorted by aspect ratio) and its CTC decoding. The reference ocrkit's converted and
    fine-tuned PP-OCR models are compared with."""

    name = "rapidocr 3.x (PP-OCRv6 small rec, onnxruntime)"

    def __init__(self, threads: int = 0, rec_batch_num: int = 6) -> None:
        try:
            from rapidocr import RapidOCR
        except ImportError as exc:  # optional dependency
            raise ImportError(
                "RapidOCR 3.x needs rapidocr: pip install 'ocrkit[external]'"
            ) from exc
        params: dict[str, Any] = {"Global.log_level": "error", "Rec.rec_batch_num": rec_batch_num}
        if threads:
            params["EngineConfig.onnxruntime.intra_op_num_threads"] = int(threads)
        # the recognition stage alone (the input is already a word crop)
        self.rec = RapidOCR(params=params)._load_rec_model()

    def predict(self, images: Sequence[np.ndarray]) -> list[Prediction]:
        from rapidocr.ch_ppocr_rec.typings import TextRecInput

        if not images:
            return []
        crops = [np.ascontiguousarray(im[..., ::-1]) for im in images]  # the wheel reads BGR
        out = self.rec(TextRecInput(img=crops))
        return [Prediction(str(t), float(s)) for t, s in zip(out.txts, out.scores)]
