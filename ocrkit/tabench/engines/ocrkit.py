"""ocrkit's own page OCR (:mod:`ocrkit.ocr`: PP-OCRv6 small detector + an ocrkit recognizer) as
a TABench text anchorer, ``--engine ocrkit``.

* R2T: recognize the crop of the query region (recognition only, no detection).
* T2R: read the whole image once (cached per image) and return the boxes of the lines, or else
  of runs of words inside a line, whose canonical string equals the query's
  (:class:`~ocrkit.tabench.engines.pages.PageEngine`). Word boxes are cut from their line where
  the CTC alignment puts the characters (:func:`ocrkit.ocr.layout.word_extents`).

Options (``--engine-opt``): ``model`` (recognizer folder, ``default`` or ``tiny``), ``threads``,
``word_boxes``, ``min_confidence``, ``batch_size``, ``db`` (``paddle``, the default, or
``wheel``: the DB post-processing preset, as ``ocrkit read --db``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ocrkit.tabench.engines.pages import Line, PageEngine, as_bool
from ocrkit.tabench.local import ENGINES


@ENGINES.register("ocrkit")
class OcrkitEngine(PageEngine):
    """``r2t``/``t2r`` on RGB ``uint8`` images with :class:`ocrkit.ocr.PageReader`."""

    def __init__(
        self,
        model: str = "default",
        word_boxes: bool = True,
        min_confidence: float = 0.5,
        threads: int = 0,
        batch_size: int = 16,
        db: str = "paddle",
        reader: Any = None,
    ) -> None:
        super().__init__()
        if reader is None:
            from ocrkit.ocr import PageReader, TextDetector
            from ocrkit.ocr.postprocess import db_preset

            reader = PageReader(
                str(model),
                TextDetector(db=db_preset(db), threads=int(threads)),
                min_confidence=float(min_confidence),
                batch_size=int(batch_size),
            )
        self.reader = reader
        self.word_boxes = as_bool(word_boxes)

    def read_crop(self, crop: np.ndarray) -> str:
        predictions = self.reader.recognize([crop])
        return predictions[0].text.strip() if predictions else ""

    def read_lines(self, image: np.ndarray) -> list[Line]:
        page = self.reader(image)
        return [
            Line(
                line.text,
                line.polygon,
                [(w.text, w.polygon) for w in line.words] if self.word_boxes else [],
            )
            for line in page.lines
        ]
