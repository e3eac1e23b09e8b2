"""The renderer's random effects: colours, backgrounds, text geometry and image deterioration.

Each effect has a probability and a strength in :class:`EffectConfig`. Geometry (rotation,
perspective, curvature) is applied to the text *masks* before the tight crop, so the crop is
exact and the background is never stretched; deterioration (blur, noise, JPEG) is applied to the
final RGB image.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ocrkit.data.image_io import CorruptImageError, read_image
from ocrkit.data.render import imageops

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class EffectConfig:
    """Probabilities (``p_*``) and strengths of every renderer effect.

    Strengths are ranges sampled uniformly; lengths are in pixels unless said otherwise, and
    geometric sizes are relative to the font size so effects look alike at every size.
    """

    min_contrast: float = 3.0  # WCAG contrast ratio between text and background colours
    backgrounds: tuple[tuple[str, float], ...] = (("solid", 0.3), ("gradient", 0.3), ("noise", 0.4))
    p_image_background: float = 0.5  # used only when the renderer has a background dir
    p_stroke: float = 0.15
    stroke_width: tuple[float, float] = (0.03, 0.08)  # x font size
    p_shadow: float = 0.15
    shadow_offset: tuple[float, float] = (0.03, 0.1)  # x font size
    p_rotate: float = 0.3
    rotate_deg: float = 6.0
    p_perspective: float = 0.2
    perspective: float = 0.15
    p_curve: float = 0.15
    curve_amplitude: tuple[float, float] = (0.05, 0.2)  # x font size
    margin: tuple[float, float] = (0.0, 0.3)  # x font size, per side
    p_blur: float = 0.2
    blur_sigma: tuple[float, float] = (0.3, 1.5)
    p_motion_blur: float = 0.1
    motion_length: tuple[int, int] = (3, 7)
    p_noise: float = 0.25
    noise_std: tuple[float, float] = (2.0, 12.0)
    p_jpeg: float = 0.25
    jpeg_quality: tuple[int, int] = (25, 90)

    @classmethod
    def none(cls) -> EffectConfig:
        """Solid background, upright text, no deterioration: only colours and margins vary."""
        zero = {f.name: 0.0 for f in dataclasses.fields(cls) if f.name.startswith("p_")}
        return cls(backgrounds=(("solid", 1.0),), **zero)


# ----------------------------------------------------------------------------------- colours
def luminance(rgb: np.ndarray) -> float:
    """WCAG relative luminance of an sRGB colour given as 0..255 values."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    lin = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(lin @ np.array([0.2126, 0.7152, 0.0722]))


def contrast_ratio(a: np.ndarray, b: np.ndarray) -> float:
    """WCAG contrast ratio (1..21) between two colours."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def contrasting_color(
    rng: np.random.Generator, background: np.ndarray, min_contrast: float
) -> np.ndarray:
    """A random colour with at least ``min_contrast`` against ``background`` (black/white fallback)."""
    for _ in range(20):
        color = rng.integers(0, 256, size=3)
        if contrast_ratio(color, background) >= min_contrast:
            return color.astype(np.uint8)
    black, white = np.zeros(3, np.uint8), np.full(3, 255, np.uint8)
    return max((black, white), key=lambda c: contrast_ratio(c, background))


# ------------------------------------------------------------------------------- backgrounds
def solid_background(h: int, w: int, color: np.ndarray) -> np.ndarray:
    return np.broadcast_to(np.asarray(color, np.uint8), (h, w, 3)).copy()


def gradient_background(
    h: int, w: int, color: np.ndarray, rng: np.random.Generator, spread: float = 40.0
) -> np.ndarray:
    """A linear ramp from ``color - d`` to ``color + d`` along a random direction."""
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    t = xs * np.cos(angle) + ys * np.sin(angle)
    t = (t - t.min()) / max(float(np.ptp(t)), 1.0) - 0.5  # -0.5..0.5
    delta = rng.uniform(-spread, spread, size=3).astype(np.float32)
    return np.clip(color.astype(np.float32) + t[..., None] * 2 * delta, 0, 255).astype(np.uint8)


def noise_background(
    h: int, w: int, color: np.ndarray, rng: np.random.Generator, amplitude: float = 25.0
) -> np.ndarray:
    """Low-frequency blotches plus fine grain around ``color`` (paper, wall, fabric)."""
    coarse = rng.normal(0, 1, size=(max(2, h // 8), max(2, w // 8), 3)).astype(np.float32)
    coarse = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    fine = rng.normal(0, 0.3, size=(h, w, 3)).astype(np.float32)
    out = color.astype(np.float32) + amplitude * (coarse + fine)
    return np.clip(out, 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=64)
def _load_image(path: str) -> np.ndarray | None:
    try:
        return read_image(path)  # the one image reader (EXIF orientation applied)
    except (OSError, CorruptImageError):
        return None


def list_background_images(directory: str | Path) -> tuple[str, ...]:
    """Image files under ``directory`` (recursive, sorted); raises if there are none."""
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"background directory {str(root)!r} does not exist")
    files = tuple(sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES))
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {str(root)!r}")
    return files


def image_background(
    h: int, w: int, files: tuple[str, ...], rng: np.random.Generator, flatten: float = 0.5
) -> np.ndarray | None:
    """A random crop of a real image, pulled ``flatten`` of the way toward its mean colour so
    that text stays legible on it; None when the chosen file cannot be decoded."""
    image = _load_image(files[int(rng.integers(len(files)))])
    if image is None:
        return None
    ih, iw = image.shape[:2]
    scale = max(h / ih, w / iw, rng.uniform(0.3, 1.0) * max(h / ih, w / iw) + 1e-6)
    if scale > 1 or rng.random() < 0.5:
        image = cv2.resize(image, (max(w, round(iw * scale)), max(h, round(ih * scale))))
        ih, iw = image.shape[:2]
    y, x = int(rng.integers(ih - h + 1)), int(rng.integers(iw - w + 1))
    patch = image[y : y + h, x : x + w].astype(np.float32)
    mean = patch.reshape(-1, 3).mean(axis=0)
    return np.clip(patch * (1 - flatten) + mean * flatten, 0, 255).astype(np.uint8)


def make_background(
    h: int,
    w: int,
    rng: np.random.Generator,
    config: EffectConfig,
    image_files: tuple[str, ...] = (),
) -> np.ndarray:
    """A random background of size (h, w) drawn from the configured kinds."""
    color = rng.integers(0, 256, size=3).astype(np.uint8)
    if image_files and rng.random() < config.p_image_background:
        patch = image_background(h, w, image_files, rng)
        if patch is not None:
            return patch
    kinds = [k for k, _ in config.backgrounds]
    weights = np.array([p for _, p in config.backgrounds], dtype=np.float64)
    kind = kinds[rng.choice(len(kinds), p=weights / weights.sum())]
    if kind == "solid":
        return solid_background(h, w, color)
    if kind == "gradient":
        return gradient_background(h, w, color, rng)
    if kind == "noise":
        return noise_background(h, w, color, rng)
    raise ValueError(f"unknown background kind {kind!r}; expected solid, gradient or noise")


# ---------------------------------------------------------------------------------- geometry
def warp_masks(
    masks: np.ndarray, rng: np.random.Generator, config: EffectConfig, size: int
) -> np.ndarray:
    """Rotate / perspective-warp / curve the stacked text masks (H, W, C) on an expanded canvas."""
    if rng.random() < config.p_curve:
        amplitude = rng.uniform(*config.curve_amplitude) * size * rng.choice([-1, 1])
        periods = rng.uniform(0.3, 1.0)
        masks = imageops.sine_warp(masks, amplitude, periods, rng.uniform(0, 2 * np.pi), "constant")
    if rng.random() < config.p_perspective:
        masks = imageops.perspective(masks, config.perspective, rng, border="constant")
    if rng.random() < config.p_rotate:
        angle = rng.uniform(-config.rotate_deg, config.rotate_deg)
        masks = imageops.rotate(masks, angle, border="constant")
    return masks


def tight_crop(
    masks: np.ndarray, rng: np.random.Generator, margin: tuple[float, float], size: int
) -> np.ndarray:
    """Crop to the ink's bounding box plus a random margin per side (zero-padded if needed)."""
    ink = np.maximum(np.maximum(masks[..., 0], masks[..., 1]), masks[..., 2]) > 8
    x, y, w_ink, h_ink = cv2.boundingRect(ink.astype(np.uint8))
    if w_ink == 0 or h_ink == 0:
        raise ValueError("the text drew no visible pixels")
    m = np.rint(rng.uniform(*margin, size=4) * size).astype(int)
    top, bottom = y - m[0], y + h_ink + m[1]
    left, right = x - m[2], x + w_ink + m[3]
    h, w = masks.shape[:2]
    pad = ((max(0, -top), max(0, bottom - h)), (max(0, -left), max(0, right - w)), (0, 0))
    masks = np.pad(masks, pad)
    dy, dx = pad[0][0], pad[1][0]
    return masks[top + dy : bottom + dy, left + dx : right + dx]


# ------------------------------------------------------------------------------ deterioration
def deteriorate(image: np.ndarray, rng: np.random.Generator, config: EffectConfig) -> np.ndarray:
    """Blur, motion blur, noise and JPEG, each with its own probability, in that order."""
    if rng.random() < config.p_blur:
        image = imageops.gaussian_blur(image, rng.uniform(*config.blur_sigma))
    if rng.random() < config.p_motion_blur:
        length = int(rng.integers(config.motion_length[0], config.motion_length[1] + 1))
        image = imageops.motion_blur(image, length, rng.uniform(0, 180))
    if rng.random() < config.p_noise:
        image = imageops.gaussian_noise(image, rng.uniform(*config.noise_std), rng)
    if rng.random() < config.p_jpeg:
        q = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
        image = imageops.jpeg(image, q)
    return image
