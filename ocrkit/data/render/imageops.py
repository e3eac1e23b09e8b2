"""Plain OpenCV/numpy image operations shared by the renderer effects and :mod:`ocrkit.data.augment`.

Every function takes a ``uint8`` array (H, W) or (H, W, C) and returns a new ``uint8`` array;
randomness, where needed, comes from the caller's ``numpy.random.Generator``. Geometric ops
``expand`` the canvas so nothing is cut off (the caller crops or resizes later).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

BORDERS = {"constant": cv2.BORDER_CONSTANT, "replicate": cv2.BORDER_REPLICATE}


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _bounds(points: np.ndarray) -> tuple[float, float, int, int]:
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return x0, y0, max(1, math.ceil(x1 - x0)), max(1, math.ceil(y1 - y0))


def _corners(h: int, w: int) -> np.ndarray:
    return np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)


def warp_affine(
    img: np.ndarray, matrix: np.ndarray, border: str = "replicate", expand: bool = True
) -> np.ndarray:
    """Apply a 2x3 affine ``matrix``; with ``expand`` the output holds the whole warped image."""
    h, w = img.shape[:2]
    m = np.asarray(matrix, dtype=np.float64).copy()
    size = (w, h)
    if expand:
        pts = _corners(h, w) @ m[:, :2].T + m[:, 2]
        x0, y0, ow, oh = _bounds(pts)
        m[:, 2] -= (x0, y0)
        size = (ow, oh)
    return cv2.warpAffine(img, m, size, flags=cv2.INTER_LINEAR, borderMode=BORDERS[border])


def affine(
    img: np.ndarray,
    angle: float = 0.0,
    scale: float = 1.0,
    shear: tuple[float, float] = (0.0, 0.0),
    border: str = "replicate",
) -> np.ndarray:
    """Rotate by ``angle`` degrees (counter-clockwise), scale, then shear by ``(sx, sy)`` degrees."""
    h, w = img.shape[:2]
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    sx, sy = (math.tan(math.radians(s)) for s in shear)
    shear_m = np.array([[1.0, sx], [sy, 1.0]])
    m = np.hstack([shear_m @ rot[:, :2], (shear_m @ rot[:, 2:])])
    return warp_affine(img, m, border=border)


def rotate(img: np.ndarray, angle: float, border: str = "replicate") -> np.ndarray:
    """Rotate by ``angle`` degrees counter-clockwise on an expanded canvas."""
    return affine(img, angle=angle, border=border)


def perspective(
    img: np.ndarray, distortion: float, rng: np.random.Generator, border: str = "replicate"
) -> np.ndarray:
    """Move each corner inward by up to ``distortion`` x half the side, then warp to the new quad."""
    h, w = img.shape[:2]
    src = _corners(h, w)
    jitter = rng.uniform(0, distortion, size=(4, 2)) * (w / 2, h / 2)
    dst = src + jitter * np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]])
    x0, y0, ow, oh = _bounds(dst)
    dst -= (x0, y0)
    m = cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32))
    return cv2.warpPerspective(img, m, (ow, oh), flags=cv2.INTER_LINEAR, borderMode=BORDERS[border])


def sine_warp(
    img: np.ndarray, amplitude: float, periods: float, phase: float, border: str = "replicate"
) -> np.ndarray:
    """Bend rows along ``amplitude * sin(2 pi periods x / W + phase)``: a curved baseline.

    The canvas grows by ``2 * |amplitude|`` rows so the curve is never cut.
    """
    h, w = img.shape[:2]
    pad = math.ceil(abs(amplitude))
    xs = np.arange(w, dtype=np.float32)
    offset = amplitude * np.sin(2 * np.pi * periods * xs / max(w, 1) + phase) + pad
    map_x = np.broadcast_to(xs, (h + 2 * pad, w)).astype(np.float32)
    map_y = (np.arange(h + 2 * pad, dtype=np.float32)[:, None] - offset[None, :]).astype(np.float32)
    return cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=BORDERS[border])


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` pixels (kernel size from sigma)."""
    return cv2.GaussianBlur(img, (0, 0), sigmaX=max(sigma, 1e-3)) if sigma > 0 else img.copy()


def motion_blur(img: np.ndarray, length: int, angle: float) -> np.ndarray:
    """Blur along a line of ``length`` pixels at ``angle`` degrees (camera shake)."""
    length = max(1, int(length))
    if length == 1:
        return img.copy()
    kernel = np.zeros((length, length), dtype=np.float32)
    kernel[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    kernel /= max(kernel.sum(), 1e-6)
    return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REPLICATE)


def gaussian_noise(img: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """Add zero-mean Gaussian noise of standard deviation ``std`` (in 0..255 units)."""
    return _to_uint8(img.astype(np.float32) + rng.normal(0.0, std, img.shape).astype(np.float32))


def poisson_noise(img: np.ndarray, lam: float, rng: np.random.Generator) -> np.ndarray:
    """Add centred Poisson noise of rate ``lam`` (shot noise, as in PARSeq's augmentation)."""
    noise = rng.poisson(lam, img.shape).astype(np.float32) - lam
    return _to_uint8(img.astype(np.float32) + noise)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through JPEG at ``quality`` (1..100) to add block and ringing artefacts."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(np.clip(quality, 1, 100))])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    flag = cv2.IMREAD_UNCHANGED if img.ndim == 2 else cv2.IMREAD_COLOR
    return cv2.imdecode(buf, flag)


def rescale(img: np.ndarray, factor: float) -> np.ndarray:
    """Downscale by ``factor`` (> 1) and back up: low-resolution blur."""
    h, w = img.shape[:2]
    small = (max(1, round(w / factor)), max(1, round(h / factor)))
    down = cv2.resize(img, small, interpolation=cv2.INTER_AREA)
    return cv2.resize(down, (w, h), interpolation=cv2.INTER_LINEAR)


def blend(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """``alpha * a + (1 - alpha) * b`` clipped to uint8 (PIL's ImageEnhance convention)."""
    return _to_uint8(alpha * a.astype(np.float32) + (1 - alpha) * b.astype(np.float32))


def grayscale(img: np.ndarray) -> np.ndarray:
    """RGB -> luminance, returned as 3 equal channels."""
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return np.repeat(gray[..., None], 3, axis=2)


def adjust_brightness(img: np.ndarray, factor: float) -> np.ndarray:
    return blend(img, np.zeros_like(img), factor)


def adjust_contrast(img: np.ndarray, factor: float) -> np.ndarray:
    mean = float(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).mean())
    return blend(img, np.full_like(img, round(mean)), factor)


def adjust_saturation(img: np.ndarray, factor: float) -> np.ndarray:
    return blend(img, grayscale(img), factor)


def adjust_hue(img: np.ndarray, shift: float) -> np.ndarray:
    """Rotate hue by ``shift`` turns (-0.5..0.5)."""
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + round(shift * 180)) % 180).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def invert(img: np.ndarray) -> np.ndarray:
    return 255 - img


def auto_contrast(img: np.ndarray) -> np.ndarray:
    """Stretch each channel to the full 0..255 range."""
    lo = img.reshape(-1, img.shape[-1]).min(axis=0).astype(np.float32)
    hi = img.reshape(-1, img.shape[-1]).max(axis=0).astype(np.float32)
    scale = np.where(hi > lo, 255.0 / np.maximum(hi - lo, 1), 1.0)
    offset = np.where(hi > lo, lo, 0.0)
    return _to_uint8((img.astype(np.float32) - offset) * scale)


def equalize(img: np.ndarray) -> np.ndarray:
    """Histogram-equalize each channel."""
    return np.stack([cv2.equalizeHist(np.ascontiguousarray(img[..., c])) for c in range(3)], -1)


def posterize(img: np.ndarray, bits: int) -> np.ndarray:
    """Keep the ``bits`` (1..8) most significant bits of each channel."""
    shift = 8 - int(np.clip(bits, 1, 8))
    return ((img >> shift) << shift).astype(np.uint8)


def solarize(img: np.ndarray, threshold: int) -> np.ndarray:
    """Invert every pixel value at or above ``threshold``."""
    return np.where(img >= threshold, 255 - img, img).astype(np.uint8)


def solarize_add(img: np.ndarray, add: int, threshold: int = 128) -> np.ndarray:
    """Add ``add`` to every pixel value below ``threshold``."""
    return np.where(img < threshold, _to_uint8(img.astype(np.int32) + add), img).astype(np.uint8)


def translate(img: np.ndarray, dx: float, dy: float, border: str = "replicate") -> np.ndarray:
    """Shift by ``(dx, dy)`` pixels on a same-size canvas."""
    m = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
    return warp_affine(img, m, border=border, expand=False)
