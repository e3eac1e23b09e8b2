"""Page-level OCR: text detection (PP-OCRv6 DB, onnxruntime) + any ocrkit recognizer."""

from ocrkit.ocr.detect import ResizeParams, TextDetector
from ocrkit.ocr.pipeline import Line, Page, PageReader, Word, read
from ocrkit.ocr.postprocess import DBParams

__all__ = ["DBParams", "Line", "Page", "PageReader", "ResizeParams", "TextDetector", "Word", "read"]
