"""RapidOCR (PP-OCRv4 detection + recognition, ONNX Runtime) as a TABench text anchorer.

The ONNX models ship inside the ``rapidocr-onnxruntime`` wheel; nothing is downloaded.

* R2T: recognize the crop of the query region (recognition only, no detection).
* T2R: detect and recognize the whole image once (cached per image), then return the boxes of
  the lines, or else of the words inside a line, whose canonical string equals the query's
  (:func:`~ocrkit.tabench.normalize.canonicalize`, the canonical form the builder merges by).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely

from ocrkit.external.rapidocr import load_rapidocr
from ocrkit.tabench.local import ENGINES
from ocrkit.tabench.normalize import canonicalize
from ocrkit.tabench.schema import Box, Shape


@dataclass
class Line:
    text: str
    box: Shape
    words: list[tuple[str, Shape]] = field(default_factory=list)


@ENGINES.register("rapidocr")
class RapidOCREngine:
    """``r2t``/``t2r`` on RGB ``uint8`` images; ``word_boxes`` also matches single words."""

    def __init__(self, word_boxes: bool = True, text_score: float = 0.5, threads: int = 0) -> None:
        self.ocr = load_rapidocr(int(threads), float(text_score))
        if isinstance(word_boxes, str):  # from --engine-opt word_boxes=false
            word_boxes = word_boxes.lower() in {"1", "true", "yes"}
        self.word_boxes = bool(word_boxes)
        self._pages: OrderedDict[bytes, list[Line]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _bgr(image: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(image[..., ::-1])

    def r2t(self, image: np.ndarray, box: Box) -> str:
        h, w = image.shape[:2]
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        x1, x2 = max(0, min(x1, x2)), min(w, max(x1, x2))
        y1, y2 = max(0, min(y1, y2)), min(h, max(y1, y2))
        if x2 - x1 < 2 or y2 - y1 < 2:
            return ""
        crop = self._bgr(image[y1:y2, x1:x2])
        result, _ = self.ocr(crop, use_det=False, use_cls=False, use_rec=True)
        return str(result[0][0]) if result else ""

    def read_page(self, image: np.ndarray) -> list[Line]:
        """Every detected line (text, polygon) with its words (kept per image, last 4 images)."""
        key = hashlib.blake2b(image.tobytes(), digest_size=16).digest() + bytes(
            str(image.shape), "ascii"
        )
        with self._lock:
            if key in self._pages:
                return self._pages[key]
        result, _ = self.ocr(self._bgr(image), return_word_box=self.word_boxes)
        lines: list[Line] = []
        for entry in result or []:
            tokens = list(zip(entry[4], entry[3])) if self.word_boxes and len(entry) >= 5 else []
            lines.append(Line(str(entry[1]), _poly(entry[0]), _words(tokens)))
        with self._lock:
            self._pages[key] = lines
            while len(self._pages) > 4:
                self._pages.popitem(last=False)
        return lines

    def t2r(self, image: np.ndarray, text: str) -> list[Shape]:
        target = canonicalize(text)
        if not target:
            return []
        found: list[Shape] = []
        for line in self.read_page(image):
            if canonicalize(line.text) == target:
                found.append(line.box)
            else:
                found += _word_spans(line.words, target)
        return found


def _poly(points: Any) -> Shape:
    return [[float(x), float(y)] for x, y in points]


def _hull(shapes: list[Shape]) -> Shape:
    """The smallest rotated rectangle around several polygons, as 4 points."""
    points = shapely.MultiPoint([tuple(p) for s in shapes for p in s])
    rect = shapely.minimum_rotated_rectangle(points)
    if rect.geom_type != "Polygon":
        return [list(p) for s in shapes for p in s]
    return [[float(x), float(y)] for x, y in list(rect.exterior.coords)[:4]]


def _words(tokens: list[tuple[str, Any]]) -> list[tuple[str, Shape]]:
    """Words from RapidOCR's per-character (Latin: sometimes per-word) boxes: whitespace splits
    words, a multi-character token is a word of its own."""
    words: list[tuple[str, Shape]] = []
    chars: list[tuple[str, Shape]] = []

    def flush() -> None:
        if chars:
            words.append(("".join(c for c, _ in chars), _hull([b for _, b in chars])))
            chars.clear()

    for text, box in tokens:
        text = str(text)
        if box is None or len(box) < 3 or not text.strip():
            flush()
        elif len(text.strip()) > 1:
            flush()
            words.append((text, _poly(box)))
        else:
            chars.append((text, _poly(box)))
    flush()
    return words


def _word_spans(words: list[tuple[str, Shape]], target: str) -> list[Shape]:
    """Boxes of runs of consecutive words whose canonical strings join to ``target``."""
    found: list[Shape] = []
    i = 0
    while i < len(words):
        joined, j, hit = "", i, False
        while j < len(words) and len(joined) < len(target):
            joined += canonicalize(words[j][0])
            j += 1
            if joined == target:
                found.append(_hull([b for _, b in words[i:j]]))
                hit = True
                break
        i = j if hit else i + 1
    return found
