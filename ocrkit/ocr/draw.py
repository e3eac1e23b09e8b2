"""Draw a :class:`~ocrkit.ocr.pipeline.Page` over its image: polygons and their text."""

from __future__ import annotations

import cv2
import numpy as np

from ocrkit.ocr.pipeline import Page


def draw_page(
    image: np.ndarray, page: Page, color: tuple[int, int, int] = (220, 30, 30)
) -> np.ndarray:
    """A copy of the RGB image with every line's polygon outlined and its text written on a
    white label above it (OpenCV's Hershey font: ASCII only, other characters become '?')."""
    canvas = np.ascontiguousarray(image.copy())
    scale = max(0.4, min(canvas.shape[:2]) / 1400)
    thickness = max(1, int(round(scale * 2)))
    for line in page.lines:
        pts = np.round(np.asarray(line.polygon)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [pts], True, color, thickness)
    for line in page.lines:
        text = "".join(c if 32 <= ord(c) < 127 else "?" for c in line.text)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        x = int(min(p[0] for p in line.polygon))
        y = int(min(p[1] for p in line.polygon)) - 2
        y = max(y, th + base)
        cv2.rectangle(canvas, (x, y - th - base), (x + tw, y), (255, 255, 255), -1)
        cv2.putText(canvas, text, (x, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, color, thickness)
    return canvas
