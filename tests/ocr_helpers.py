"""A rendered page with known words for the page OCR tests."""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest

HAS_DETECTOR = importlib.util.find_spec("rapidocr") is not None and (
    importlib.util.find_spec("onnxruntime") is not None
)
needs_detector = pytest.mark.skipif(
    not HAS_DETECTOR, reason="the PP-OCRv6 detector ships in the rapidocr wheel (not installed)"
)


def render_page() -> tuple[np.ndarray, dict[str, list[int]]]:
    """White 560x220 RGB page: 'HELLO' and 'WORLD' on the first row, 'OCRKIT' below; the
    axis-aligned box of each word."""
    image = np.full((220, 560, 3), 255, np.uint8)
    boxes = {}
    for word, x, y in (("HELLO", 20, 80), ("WORLD", 300, 80), ("OCRKIT", 150, 180)):
        (w, h), base = cv2.getTextSize(word, cv2.FONT_HERSHEY_SIMPLEX, 1.6, 3)
        cv2.putText(image, word, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (0, 0, 0), 3)
        boxes[word] = [x, y - h, x + w, y + base]
    return image, boxes


def box_iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0
