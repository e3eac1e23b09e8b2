"""RapidOCR (PP-OCRv4 detection + recognition, ONNX Runtime) as a TABench text anchorer.

The ONNX models ship inside the ``rapidocr-onnxruntime`` wheel; nothing is downloaded.

* R2T: recognize the crop of the query region (recognition only, no detection).
* T2R: detect and recognize the whole image once (cached per image), then return the boxes of
  the lines, or else of the words inside a line, whose canonical string equals the query's
  (:class:`~ocrkit.tabench.engines.pages.PageEngine`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ocrkit.external.rapidocr import load_rapidocr
from ocrkit.tabench.engines.pages import Line, PageEngine, as_bool, hull, poly
from ocrkit.tabench.local import ENGINES
from ocrkit.tabench.schema import Shape


@ENGINES.register("rapidocr")
class RapidOCREngine(PageEngine):
    """``r2t``/``t2r`` on RGB ``uint8`` images; ``word_boxes`` also matches single words."""

    def __init__(self, word_boxes: bool = True, text_score: float = 0.5, threads: int = 0) -> None:
        super().__init__()
        self.ocr = load_rapidocr(int(threads), float(text_score))
        self.word_boxes = as_bool(word_boxes)

    @staticmethod
    def _bgr(image: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(image[..., ::-1])

    def read_crop(self, crop: np.ndarray) -> str:
        result, _ = self.ocr(self._bgr(crop), use_det=False, use_cls=False, use_rec=True)
        return str(result[0][0]) if result else ""

    def read_lines(self, image: np.ndarray) -> list[Line]:
        result, _ = self.ocr(self._bgr(image), return_word_box=self.word_boxes)
        lines: list[Line] = []
        for entry in result or []:
            tokens = list(zip(entry[4], entry[3])) if self.word_boxes and len(entry) >= 5 else []
            lines.append(Line(str(entry[1]), poly(entry[0]), _words(tokens)))
        return lines


def _words(tokens: list[tuple[str, Any]]) -> list[tuple[str, Shape]]:
    """Words from RapidOCR's per-character (Latin: sometimes per-word) boxes: whitespace splits
    words, a multi-character token is a word of its own."""
    words: list[tuple[str, Shape]] = []
    chars: list[tuple[str, Shape]] = []

    def flush() -> None:
        if chars:
            words.append(("".join(c for c, _ in chars), hull([b for _, b in chars])))
            chars.clear()

    for text, box in tokens:
        text = str(text)
        if box is None or len(box) < 3 or not text.strip():
            flush()
        elif len(text.strip()) > 1:
            flush()
            words.append((text, poly(box)))
        else:
            chars.append((text, poly(box)))
    flush()
    return words
