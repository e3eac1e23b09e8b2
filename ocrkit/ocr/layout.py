"""Geometry between detection and recognition: rectified crops, reading order, word boxes."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

LINE_Y_THRESHOLD = 10.0  # px; rapidocr's _BOX_SORT_Y_THRESHOLD (PaddleOCR's sorted_boxes)
VERTICAL_RATIO = 1.5  # a crop at least this many times taller than wide is turned by 90 degrees


def crop_quad(image: np.ndarray, quad: np.ndarray) -> tuple[np.ndarray, bool]:
    """Cut and rectify a quadrilateral (tl, tr, br, bl) with a perspective warp, as PaddleOCR's
    ``get_rotate_crop_image``: the output is as wide as the longer horizontal edge and as high as
    the longer vertical one (cubic interpolation, replicated border); a result at least 1.5 times
    taller than wide is rotated 90 degrees counter-clockwise (``np.rot90``). Returns the crop and
    whether it was rotated."""
    pts = np.asarray(quad, np.float32).reshape(4, 2)
    width = int(max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[2] - pts[3])))
    height = int(max(np.linalg.norm(pts[0] - pts[3]), np.linalg.norm(pts[1] - pts[2])))
    width, height = max(width, 1), max(height, 1)
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    matrix = cv2.getPerspectiveTransform(pts, target)
    crop = cv2.warpPerspective(
        image,
        matrix,
        (width, height),
        borderMode=cv2.BORDER_REPLICATE,
        flags=cv2.INTER_CUBIC,
    )
    if crop.shape[0] / crop.shape[1] >= VERTICAL_RATIO:
        return np.ascontiguousarray(np.rot90(crop)), True
    return crop, False


def reading_order(
    quads: np.ndarray, threshold: float = LINE_Y_THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """Order of boxes top-to-bottom then left-to-right, and each box's row number.

    The ``rapidocr`` wheel's ``sorted_boxes`` (PaddleOCR's, vectorized): a stable sort by the
    top-left corner's y; a new row starts where the next y is ``threshold`` px or more below the
    previous one; within a row, left to right by the top-left x.
    """
    quads = np.asarray(quads, np.float32).reshape(-1, 4, 2)
    if not len(quads):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    by_y = np.argsort(quads[:, 0, 1], kind="stable")
    rows = np.concatenate([[0], np.cumsum(np.diff(quads[by_y, 0, 1]) >= threshold)])
    within = np.lexsort((quads[by_y, 0, 0], rows))
    return by_y[within], rows[within]


def word_spans(text: str) -> list[tuple[str, int, int]]:
    """Whitespace-separated words with their ``[start, end)`` character offsets."""
    spans, start = [], None
    for i, ch in enumerate(text + " "):
        if ch.isspace():
            if start is not None:
                spans.append((text[start:i], start, i))
                start = None
        elif start is None:
            start = i
    return spans


def word_extents(
    text: str, positions: Sequence[float] | None = None
) -> list[tuple[str, int, int, float, float]]:
    """Each word of ``text`` with its character offsets and its ``[a, b]`` extent along the line
    (fractions of its length).

    With ``positions`` (each character's centre, 0..1: ``Prediction.char_positions`` of a CTC
    model) the line's first word starts at 0 and its last ends at 1 (the detector's box already
    hugs the text); between two words the cut lies half a character pitch (the median distance
    of neighbouring characters within words) past the outer characters' centres, and at most
    midway between them. Without them the cuts are in proportion to character offsets (glyph
    widths unknown), the only choice for decoders without an alignment."""
    spans = word_spans(text)
    if positions is None or len(positions) != len(text):
        n = max(len(text), 1)
        return [(word, start, end, start / n, end / n) for word, start, end in spans]
    if len(spans) < 2:  # one word: the whole line
        return [(word, start, end, 0.0, 1.0) for word, start, end in spans]
    pitch = _char_pitch(spans, positions) or 1.0 / len(text)
    edges = [0.0]
    for (_, _, end, *_), (_, start, _) in zip(spans, spans[1:]):
        last, first = positions[end - 1], positions[start]
        middle = (last + first) / 2
        edges += [min(last + pitch / 2, middle), max(first - pitch / 2, middle)]
    edges.append(1.0)
    return [
        (word, start, end, edges[2 * k], edges[2 * k + 1])
        for k, (word, start, end) in enumerate(spans)
    ]


def _char_pitch(spans: list[tuple[str, int, int]], positions: Sequence[float]) -> float:
    """The median centre-to-centre distance of neighbouring characters within words (0: none)."""
    steps = [positions[i + 1] - positions[i] for _, s, e in spans for i in range(s, e - 1)]
    return float(np.median(steps)) if steps else 0.0


def word_quads(
    quad: np.ndarray, text: str, rotated: bool = False, positions: Sequence[float] | None = None
) -> list[tuple[str, int, int, np.ndarray]]:
    """Each word of ``text`` with its character offsets and a quadrilateral cut from the line's
    ``quad`` at its :func:`word_extents` (from the characters' ``positions`` when given).

    ``rotated``: the crop was turned by :func:`crop_quad`, so the text runs from the quad's
    top edge to its bottom edge."""
    q = np.asarray(quad, np.float32).reshape(4, 2)
    if rotated:  # reading axis p1->p2 on the text's top side, p0->p3 on its bottom side
        top, bottom = (q[1], q[2]), (q[0], q[3])
    else:
        top, bottom = (q[0], q[1]), (q[3], q[2])
    out = []
    for word, start, end, a, b in word_extents(text, positions):
        corners = [
            top[0] + (top[1] - top[0]) * a,
            top[0] + (top[1] - top[0]) * b,
            bottom[0] + (bottom[1] - bottom[0]) * b,
            bottom[0] + (bottom[1] - bottom[0]) * a,
        ]
        out.append((word, start, end, np.array(corners, np.float32)))
    return out
