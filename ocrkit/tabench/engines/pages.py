"""What OCR engines share as TABench text anchorers: R2T reads the query box's crop, T2R reads
the whole page once (cached per image) and returns the boxes of the lines, or else of runs of
words inside a line, whose canonical string equals the query's
(:func:`~ocrkit.tabench.normalize.canonicalize`, the canonical form the builder merges by)."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely

from ocrkit.tabench.normalize import canonicalize
from ocrkit.tabench.schema import Box, Shape


@dataclass
class Line:
    text: str
    box: Shape
    words: list[tuple[str, Shape]] = field(default_factory=list)


def as_bool(value: Any) -> bool:
    """An engine option that may come as a string (``--engine-opt word_boxes=false``)."""
    return value.lower() in {"1", "true", "yes"} if isinstance(value, str) else bool(value)


class PageEngine:
    """Subclasses implement :meth:`read_crop` (RGB crop -> text) and :meth:`read_lines` (RGB
    page -> lines with their words)."""

    pages_kept = 4

    def __init__(self) -> None:
        self._pages: OrderedDict[bytes, list[Line]] = OrderedDict()
        self._lock = threading.Lock()

    def read_crop(self, crop: np.ndarray) -> str:
        raise NotImplementedError

    def read_lines(self, image: np.ndarray) -> list[Line]:
        raise NotImplementedError

    def r2t(self, image: np.ndarray, box: Box) -> str:
        h, w = image.shape[:2]
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        x1, x2 = max(0, min(x1, x2)), min(w, max(x1, x2))
        y1, y2 = max(0, min(y1, y2)), min(h, max(y1, y2))
        if x2 - x1 < 2 or y2 - y1 < 2:
            return ""
        return self.read_crop(np.ascontiguousarray(image[y1:y2, x1:x2]))

    def read_page(self, image: np.ndarray) -> list[Line]:
        """Every line of the page (kept for the last few images: queries come grouped)."""
        key = hashlib.blake2b(image.tobytes(), digest_size=16).digest() + bytes(
            str(image.shape), "ascii"
        )
        with self._lock:
            if key in self._pages:
                return self._pages[key]
        lines = self.read_lines(image)
        with self._lock:
            self._pages[key] = lines
            while len(self._pages) > self.pages_kept:
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
                found += word_spans(line.words, target)
        return found


def poly(points: Any) -> Shape:
    return [[float(x), float(y)] for x, y in points]


def hull(shapes: list[Shape]) -> Shape:
    """The smallest rotated rectangle around several polygons, as 4 points."""
    points = shapely.MultiPoint([tuple(p) for s in shapes for p in s])
    rect = shapely.minimum_rotated_rectangle(points)
    if rect.geom_type != "Polygon":
        return [list(p) for s in shapes for p in s]
    return [[float(x), float(y)] for x, y in list(rect.exterior.coords)[:4]]


def word_spans(words: list[tuple[str, Shape]], target: str) -> list[Shape]:
    """Boxes of runs of consecutive words whose canonical strings join to ``target``."""
    found: list[Shape] = []
    i = 0
    while i < len(words):
        joined, j, hit = "", i, False
        while j < len(words) and len(joined) < len(target):
            joined += canonicalize(words[j][0])
            j += 1
            if joined == target:
                found.append(hull([b for _, b in words[i:j]]))
                hit = True
                break
        i = j if hit else i + 1
    return found
