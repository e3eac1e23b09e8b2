"""Page-level OCR: detect text regions, rectify and recognize them, return them in reading order.

``read(images)`` is the one-call entry point; :class:`PageReader` keeps the detector and the
recognizer loaded between calls. The detector is the PP-OCRv6 small DB network of the
``rapidocr`` wheel (:mod:`ocrkit.ocr.detect`), the recognizer any ocrkit predictor (default: the
embedded ``default`` model). After recognition, empty texts and regions whose mean character
confidence is under ``min_confidence`` (0.5, the wheel's ``Global.text_score``) are dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ocrkit.data.image_io import UNREADABLE, raises_on_error, unreadable_message
from ocrkit.models.preprocess import to_rgb_array
from ocrkit.ocr.detect import WHEEL_RESIZE, ResizeParams, TextDetector
from ocrkit.ocr.layout import crop_quad, reading_order, word_quads
from ocrkit.ocr.postprocess import DEFAULT_DB, DBParams

logger = logging.getLogger(__name__)


def _points(quad: np.ndarray) -> list[list[float]]:
    return [[round(float(x), 2), round(float(y), 2)] for x, y in np.asarray(quad).reshape(-1, 2)]


def _bbox(quad: np.ndarray) -> list[float]:
    q = np.asarray(quad, np.float64).reshape(-1, 2)
    return [round(float(v), 2) for v in (*q.min(0), *q.max(0))]


@dataclass
class Word:
    """A whitespace-separated word; its polygon is cut from its line's where the recognizer's
    CTC alignment puts its characters (:func:`~ocrkit.ocr.layout.word_extents`)."""

    text: str
    confidence: float
    polygon: list[list[float]]
    box: list[float]


@dataclass
class Line:
    """One detected region with its text: ``polygon`` (tl, tr, br, bl in image pixels), ``box``
    (x1, y1, x2, y2), the recognizer's ``confidence``, the detector's ``det_score``, ``row`` (the
    reading-order row it belongs to) and its ``words``."""

    text: str
    confidence: float
    polygon: list[list[float]]
    box: list[float]
    det_score: float
    row: int
    words: list[Word] = field(default_factory=list)


@dataclass
class Page:
    """The lines of one image in reading order; ``error`` says why an image could not be read
    (its page is then empty, 0 x 0)."""

    width: int
    height: int
    lines: list[Line]
    path: str | None = None
    error: str | None = None

    @property
    def text(self) -> str:
        """Lines of the same row joined by spaces, rows by newlines."""
        rows: dict[int, list[str]] = {}
        for line in self.lines:
            rows.setdefault(line.row, []).append(line.text)
        return "\n".join(" ".join(parts) for _, parts in sorted(rows.items()))

    @property
    def words(self) -> list[Word]:
        return [w for line in self.lines for w in line.words]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "width": self.width,
            "height": self.height,
            "text": self.text,
            "lines": [asdict(line) for line in self.lines],
            **({"error": self.error} if self.error else {}),
        }


def mean_char_confidence(prediction: Any) -> float:
    """The mean per-character confidence (RapidOCR's score), else the sequence confidence."""
    chars = list(getattr(prediction, "char_confidences", None) or [])
    return float(np.mean(chars)) if chars else float(prediction.confidence)


class PageReader:
    """Detector + recognizer; ``reader(image) -> Page``, ``reader.read(images) -> [Page]``.

    ``recognizer``: a predictor (``predict(list of RGB arrays) -> predictions``, e.g. a
    :class:`~ocrkit.models.recognizer.Recognizer` or an ``OnnxRecognizer``), or a model folder
    or embedded name for :func:`ocrkit.load_recognizer` (``None``: the default model).
    """

    def __init__(
        self,
        recognizer: Any = None,
        detector: TextDetector | None = None,
        *,
        det_model: str | Path | None = None,
        db: DBParams = DEFAULT_DB,
        resize: ResizeParams = WHEEL_RESIZE,
        min_confidence: float = 0.5,
        batch_size: int = 16,
        threads: int = 0,
    ) -> None:
        if recognizer is None or isinstance(recognizer, (str, Path)):
            from ocrkit import load_recognizer

            recognizer = load_recognizer(None if recognizer is None else str(recognizer))
        self.recognizer = recognizer
        self.detector = detector or TextDetector(det_model, db=db, resize=resize, threads=threads)
        self.min_confidence = float(min_confidence)
        self.batch_size = int(batch_size)

    def recognize(self, crops: list[np.ndarray]) -> list[Any]:
        if not crops:
            return []
        try:
            return self.recognizer.predict(crops, batch_size=self.batch_size)
        except TypeError:  # a predictor without batch_size
            return self.recognizer.predict(crops)

    def read_regions(self, image: np.ndarray, quads: np.ndarray, scores: np.ndarray) -> list[Line]:
        """Recognize given regions of an RGB image; the kept lines, in reading order."""
        order, rows = reading_order(quads)
        cuts = [crop_quad(image, quads[i]) for i in order]
        predictions = self.recognize([crop for crop, _ in cuts])
        lines = []
        for i, row, (_, rotated), pred in zip(order, rows, cuts, predictions):
            text = pred.text.strip()
            if not text or mean_char_confidence(pred) < self.min_confidence:
                continue
            chars = list(getattr(pred, "char_confidences", None) or [])
            words = []
            positions = list(getattr(pred, "char_positions", None) or []) or None
            for word, start, end, wquad in word_quads(quads[i], pred.text, rotated, positions):
                conf = chars[start:end] if len(chars) == len(pred.text) else []
                words.append(
                    Word(
                        word,
                        round(float(np.mean(conf)) if conf else float(pred.confidence), 6),
                        _points(wquad),
                        _bbox(wquad),
                    )
                )
            lines.append(
                Line(
                    text,
                    round(float(pred.confidence), 6),
                    _points(quads[i]),
                    _bbox(quads[i]),
                    round(float(scores[i]), 6),
                    int(row),
                    words,
                )
            )
        return lines

    def __call__(self, image: Any) -> Page:
        return self._read_page(_load(image), image)

    def _read_page(self, rgb: np.ndarray, image: Any) -> Page:
        quads, scores = self.detector(rgb)
        lines = self.read_regions(rgb, quads, scores)
        return Page(rgb.shape[1], rgb.shape[0], lines, _path_of(image))

    def read(self, images: Any | Sequence[Any], on_error: str = "skip") -> list[Page]:
        """One :class:`Page` per image; an image that cannot be read (missing or corrupt file,
        a wrong array) is logged and gets an empty page with ``error`` set, and the rest is
        read (``on_error="raise"`` raises instead)."""
        raise_errors = raises_on_error(on_error)
        if isinstance(images, (str, Path, np.ndarray)) or hasattr(images, "convert"):
            images = [images]
        pages = []
        for n, image in enumerate(images):
            try:  # only the loading: an error past it is not the input's fault
                rgb = _load(image)
            except UNREADABLE as exc:
                if raise_errors:
                    raise
                logger.warning("skipped %s", unreadable_message(image, n, exc))
                pages.append(Page(0, 0, [], _path_of(image), f"{type(exc).__name__}: {exc}"))
                continue
            pages.append(self._read_page(rgb, image))
        return pages


def _load(image: Any) -> np.ndarray:
    """A path, PIL image or array as a contiguous RGB ``uint8`` array (the recognizers' loader)."""
    return np.ascontiguousarray(to_rgb_array(image))


def _path_of(image: Any) -> str | None:
    return str(image) if isinstance(image, (str, Path)) else None


_READERS: dict[str, PageReader] = {}


def read(
    images: Any | Sequence[Any], model: str | None = None, on_error: str = "skip", **options: Any
) -> list[Page]:
    """Read whole images (paths, PIL images or RGB arrays; one or a list): one :class:`Page`
    each, its lines in reading order (an unreadable image: an empty page with ``error``, see
    :meth:`PageReader.read`). ``model``: recognizer folder or ``default``/``tiny``; ``options``
    go to :class:`PageReader` (the reader is kept for later calls without them)."""
    key = str(model)
    reader = _READERS.get(key) if not options else None
    if reader is None:
        reader = PageReader(model, **options)
        if not options:
            _READERS[key] = reader
    return reader.read(images, on_error)
