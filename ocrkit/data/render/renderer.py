"""``WordRenderer``: draws one word into a tightly cropped RGB image with random effects.

Sample ``i`` of a renderer with seed ``s`` uses its own generator ``default_rng([s, i])``, so
``renderer.sample(i)`` is the same image and word whichever process renders it and in whatever
order: parallel rendering gives the same data set as serial rendering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from ocrkit.data.render import effects
from ocrkit.data.render.effects import EffectConfig
from ocrkit.data.render.fonts import (
    CJK_INSTALL_HINT,
    FontSpec,
    MissingFontError,
    discover_fonts,
    fonts_for,
    load_font,
)
from ocrkit.data.render.words import WordConfig, WordSource


@dataclass(frozen=True)
class RenderConfig:
    """Font size range (pixels, inclusive) and the effect configuration."""

    font_size: tuple[int, int] = (32, 64)
    effects: EffectConfig = field(default_factory=EffectConfig)

    def __post_init__(self) -> None:
        lo, hi = self.font_size
        if not 4 <= lo <= hi:
            raise ValueError(f"font_size must satisfy 4 <= min <= max, got {self.font_size}")


class WordRenderer:
    """Renders words as RGB ``uint8`` images.

    Args:
        seed: base seed; ``sample(i)`` depends only on ``(seed, i)``.
        fonts: fonts to draw with (default: every discovered font). Each word is drawn in a font
            chosen among those that have all its glyphs.
        words: where :meth:`sample` takes its words (default: English ``WordSource``).
        config: font sizes and effects; ``RenderConfig(effects=EffectConfig.none())`` is plain.
        background_dir: optional folder of real images to crop backgrounds from.
    """

    def __init__(
        self,
        seed: int = 0,
        fonts: Sequence[FontSpec] | None = None,
        words: WordSource | WordConfig | None = None,
        config: RenderConfig | None = None,
        background_dir: str | Path | None = None,
    ) -> None:
        self.seed = int(seed)
        self.words = words if isinstance(words, WordSource) else WordSource(words)
        self.config = config or RenderConfig()
        self.fonts = sorted(fonts) if fonts is not None else discover_fonts()
        if not self.fonts:
            raise ValueError("WordRenderer needs at least one font")
        if self.words.needs_cjk and not any("cjk" in f.scripts for f in self.fonts):
            raise MissingFontError(CJK_INSTALL_HINT)
        self.background_files = (
            effects.list_background_images(background_dir) if background_dir else ()
        )

    def rng(self, index: int) -> np.random.Generator:
        """The generator of sample ``index``: independent streams per (seed, index)."""
        return np.random.default_rng([self.seed, int(index)])

    def sample(self, index: int) -> tuple[np.ndarray, str]:
        """Sample ``index``: a random word and its image, deterministic per (seed, index)."""
        rng = self.rng(index)
        text = self.words.sample(rng)
        return self.render(text, rng), text

    def render(self, text: str, rng: np.random.Generator | None = None) -> np.ndarray:
        """Draw ``text`` with random font, colours, background and effects from ``rng``.

        Without ``rng`` the renderer's seed is used, so the call is repeatable.
        Raises :class:`~ocrkit.data.render.fonts.MissingFontError` if no font has its glyphs.
        """
        if not text.strip():
            raise ValueError("cannot render empty or whitespace-only text")
        rng = rng if rng is not None else np.random.default_rng(self.seed)
        cfg = self.config.effects
        candidates = fonts_for(text, self.fonts)
        font_spec = candidates[int(rng.integers(len(candidates)))]
        size = int(rng.integers(self.config.font_size[0], self.config.font_size[1] + 1))
        masks = self._draw_masks(text, font_spec, size, rng)
        masks = effects.warp_masks(masks, rng, cfg, size)
        masks = effects.tight_crop(masks, rng, cfg.margin, size)
        h, w = masks.shape[:2]
        background = effects.make_background(h, w, rng, cfg, self.background_files)
        image = self._composite(background, masks, rng)
        return np.ascontiguousarray(effects.deteriorate(image, rng, cfg))

    def _draw_masks(
        self, text: str, font_spec: FontSpec, size: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Coverage masks (H, W, 3) of the fill, the stroke and the shadow of ``text``."""
        cfg = self.config.effects
        font = load_font(font_spec, size)
        stroke = 0
        if rng.random() < cfg.p_stroke:
            stroke = max(1, round(rng.uniform(*cfg.stroke_width) * size))
        shadow = None
        if rng.random() < cfg.p_shadow:
            shadow = np.rint(
                rng.uniform(*cfg.shadow_offset, size=2) * size * rng.choice([-1, 1], 2)
            )
        left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
        pad = size // 2 + stroke + (int(np.abs(shadow).max()) if shadow is not None else 0)
        canvas = (right - left + 2 * pad, bottom - top + 2 * pad)
        origin = (pad - left, pad - top)
        layers = []
        for width in (0, stroke):
            layer = Image.new("L", canvas, 0)
            if width or not layers:
                ImageDraw.Draw(layer).text(origin, text, fill=255, font=font, stroke_width=width)
            layers.append(np.asarray(layer))
        body = layers[1] if stroke else layers[0]
        shade = np.zeros_like(body)
        if shadow is not None:
            dx, dy = int(shadow[0]), int(shadow[1])
            shifted = np.roll(body, (dy, dx), axis=(0, 1))
            shade = effects.imageops.gaussian_blur(shifted, size * 0.03)
        return np.stack([layers[0], layers[1], shade], axis=-1)

    def _composite(
        self, background: np.ndarray, masks: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Paint shadow, stroke and fill over ``background`` in colours that contrast with it."""
        cfg = self.config.effects
        bg_mean = np.array(cv2.mean(background)[:3])
        fill = effects.contrasting_color(rng, bg_mean, cfg.min_contrast)
        stroke = effects.contrasting_color(rng, fill, 1.5)
        shade = np.clip(bg_mean * rng.uniform(0.2, 0.6), 0, 255)
        out = background.astype(np.float32)
        for channel, color in ((2, shade), (1, stroke), (0, fill)):
            mask = np.ascontiguousarray(masks[..., channel])
            if cv2.countNonZero(mask):
                alpha = mask[..., None].astype(np.float32) / 255.0
                out = out * (1 - alpha) + np.asarray(color, np.float32) * alpha
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
