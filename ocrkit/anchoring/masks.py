"""De-stylized text masks (Q-Mask paper, Sec. 5 / Supplementary S2).

A region's mask is not cut out of the photo: its transcript is rendered again in a standard
font (Ubuntu Regular for Latin, Noto Sans SC for Chinese in the paper) at the largest size that
fits the box, cropped to the ink and resized to the box. The mask thus says *where the
characters of the text are*, free of the image's style (colour, stroke, effects, background).
Quadrilaterals (ICDAR) get the rectangle of their mean side lengths, warped onto the quad.

Ubuntu Regular is used when a font discovery finds it (Debian ``fonts-ubuntu``; not in
bookworm's main archive); otherwise the closest available humanist sans, DejaVu Sans, which
matplotlib always ships. Pass ``font=`` (a :class:`FontSpec`, a font file or a face name) to
choose another.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw

from ocrkit.data.render.fonts import FontSpec, covers, discover_fonts, load_font

LATIN_FONTS = ("Ubuntu", "Ubuntu Regular", "DejaVu Sans")  # the paper's choice first
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Noto Sans CJK SC Regular")
MAX_RENDER_SIZE = 160  # pixels: a larger fitted size only changes anti-aliasing after resizing

FontLike = FontSpec | str | Path | None


def _is_cjk(text: str) -> bool:
    return any(0x2E80 <= ord(c) <= 0x9FFF or 0xF900 <= ord(c) <= 0xFAFF for c in text)


@functools.lru_cache(maxsize=8)
def _by_name(names: tuple[str, ...]) -> FontSpec | None:
    fonts = [f for f in discover_fonts() if f.style == "regular"]
    for name in names:
        for f in fonts:
            if f.name == name:
                return f
    return None


def default_font(text: str = "A") -> FontSpec:
    """The paper's font for ``text`` when installed, else the closest available one."""
    if _is_cjk(text):
        spec = _by_name(CJK_FONTS)
        if spec is None:
            from ocrkit.data.render.fonts import require_fonts

            spec = require_fonts("cjk")[0]
        return spec
    spec = _by_name(LATIN_FONTS)
    if spec is None:
        from ocrkit.data.render.fonts import require_fonts

        spec = require_fonts("latin")[0]
    return spec


def resolve_font(font: FontLike, text: str) -> FontSpec:
    """A :class:`FontSpec` from a spec, a font file path, a face name, or None (the default)."""
    if font is None:
        spec = default_font(text)
    elif isinstance(font, FontSpec):
        spec = font
    elif Path(str(font)).is_file():
        spec = FontSpec(Path(str(font)).stem, str(font))
    else:
        spec = _by_name((str(font),))
        if spec is None:
            raise ValueError(
                f"font {font!r} not found; pass a font file path or an installed face name"
            )
    if not covers(spec, text) and font is not None:
        raise ValueError(f"font {spec.name!r} has no glyph for some of {text!r}")
    if not covers(spec, text):  # the default does not cover it: the other script's default
        other = default_font("的" if not _is_cjk(text) else "A")
        spec = other if covers(other, text) else spec
    return spec


def _fitted_size(text: str, spec: FontSpec, width: int, height: int, vertical: bool) -> int:
    """The largest font size whose ink box fits ``width x height`` (binary search)."""

    def fits(size: int) -> bool:
        w, h = _ink_extent(text, spec, size, vertical)
        return w <= width and h <= height

    lo, hi = 4, max(4, min(MAX_RENDER_SIZE, 2 * max(width, height)))
    if not fits(lo):
        return lo
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def _ink_extent(text: str, spec: FontSpec, size: int, vertical: bool) -> tuple[int, int]:
    font = load_font(spec, size)
    if vertical:
        boxes = [font.getbbox(c) for c in text if not c.isspace()]
        return max(b[2] - b[0] for b in boxes), sum(b[3] - b[1] for b in boxes)
    left, top, right, bottom = font.getbbox(text)
    return right - left, bottom - top


def render_text_mask(text: str, width: int, height: int, font: FontLike = None) -> np.ndarray:
    """``uint8 [height, width]`` de-stylized mask of ``text`` filling a ``width x height`` box.

    Vertical layout (one character per line) when the box is clearly taller than wide and the
    text has several characters. The ink is stretched to touch all four sides of the box.
    """
    width, height = max(1, int(round(width))), max(1, int(round(height)))
    text = text.strip()
    if not text:
        return np.zeros((height, width), np.uint8)
    spec = resolve_font(font, text)
    vertical = height > 1.5 * width and len(text.replace(" ", "")) > 1
    scale = min(1.0, MAX_RENDER_SIZE / max(width, height))
    size = _fitted_size(
        text, spec, max(4, int(width * scale)), max(4, int(height * scale)), vertical
    )
    pil_font = load_font(spec, size)
    ew, eh = _ink_extent(text, spec, size, vertical)
    canvas = Image.new("L", (ew + 2 * size, eh + 2 * size), 0)
    draw = ImageDraw.Draw(canvas)
    if vertical:
        y = size
        for c in text:
            if c.isspace():
                continue
            left, top, right, bottom = pil_font.getbbox(c)
            draw.text((size - left, y - top), c, fill=255, font=pil_font)
            y += bottom - top
    else:
        left, top, _, _ = pil_font.getbbox(text)
        draw.text((size - left, size - top), text, fill=255, font=pil_font)
    ink = np.asarray(canvas)
    ys, xs = np.nonzero(ink)
    if ys.size == 0:  # a font that draws nothing for it (spaces only)
        return np.zeros((height, width), np.uint8)
    crop = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    interp = cv2.INTER_AREA if crop.shape[0] > height or crop.shape[1] > width else cv2.INTER_LINEAR
    return cv2.resize(crop, (width, height), interpolation=interp)


def _as_quad(shape: Sequence[Any]) -> np.ndarray:
    if shape and isinstance(shape[0], (list, tuple, np.ndarray)):
        pts = np.asarray(shape, np.float32).reshape(-1, 2)
        if len(pts) != 4:  # a polygon: its minimum-area rectangle
            pts = cv2.boxPoints(cv2.minAreaRect(pts)).astype(np.float32)
            pts = _order_quad(pts)
        return pts
    x1, y1, x2, y2 = (float(v) for v in shape)
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)


def _order_quad(pts: np.ndarray) -> np.ndarray:
    """Clockwise from the top-left corner (smallest x + y)."""
    center = pts.mean(0)
    angles = np.arctan2(pts[:, 1] - center[1], pts[:, 0] - center[0])
    pts = pts[np.argsort(angles)]
    start = int(np.argmin(pts.sum(1)))
    return np.roll(pts, -start, axis=0)


def render_region_mask(
    text: str, shape: Sequence[Any], width: int, height: int, font: FontLike = None
) -> np.ndarray:
    """``uint8 [height, width]`` image-sized mask of one region (a box or a quadrilateral)."""
    quad = _as_quad(shape)
    out = np.zeros((height, width), np.uint8)
    rect_w = (np.linalg.norm(quad[1] - quad[0]) + np.linalg.norm(quad[2] - quad[3])) / 2
    rect_h = (np.linalg.norm(quad[3] - quad[0]) + np.linalg.norm(quad[2] - quad[1])) / 2
    if rect_w < 1 or rect_h < 1:
        return out
    axis_aligned = (
        abs(quad[0, 1] - quad[1, 1]) < 0.5
        and abs(quad[0, 0] - quad[3, 0]) < 0.5
        and abs(quad[2, 1] - quad[3, 1]) < 0.5
        and abs(quad[1, 0] - quad[2, 0]) < 0.5
    )
    if axis_aligned:
        x1, y1 = int(round(quad[0, 0])), int(round(quad[0, 1]))
        x2, y2 = int(round(quad[2, 0])), int(round(quad[2, 1]))
        mask = render_text_mask(text, x2 - x1, y2 - y1, font)
        cx1, cy1, cx2, cy2 = max(0, x1), max(0, y1), min(width, x2), min(height, y2)
        if cx2 > cx1 and cy2 > cy1:
            region = mask[cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1]
            out[cy1:cy2, cx1:cx2] = region
        return out
    w, h = int(round(rect_w)), int(round(rect_h))
    mask = render_text_mask(text, w, h, font)
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    matrix = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    return cv2.warpPerspective(mask, matrix, (width, height), flags=cv2.INTER_LINEAR)


def render_mask(
    regions: Sequence[tuple[str, Sequence[Any]]], width: int, height: int, font: FontLike = None
) -> np.ndarray:
    """The union (pixel maximum) of the de-stylized masks of ``(text, shape)`` regions."""
    out = np.zeros((height, width), np.uint8)
    for text, shape in regions:
        np.maximum(out, render_region_mask(text, shape, width, height, font), out=out)
    return out
