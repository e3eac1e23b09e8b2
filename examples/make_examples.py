"""Regenerate the example images in this folder with ocrkit's own renderer (DejaVu fonts from
matplotlib, so the images carry no third-party image licence): ``python examples/make_examples.py``.

``word1.png``, ``word2.png``, ``word3.jpg``: word crops. ``scene.jpg``: a few words drawn on a
textured background, a stand-in for a photo or page.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ocrkit.data.render import EffectConfig, RenderConfig, WordRenderer, list_fonts

HERE = Path(__file__).resolve().parent
WORDS = {"word1.png": "Hello", "word2.png": "World", "word3.jpg": "ocrkit"}
SCENE_LINES = [("OPEN", (40, 30)), ("Coffee 24h", (40, 120)), ("Exit", (300, 230))]


def main() -> None:
    fonts = [f for f in list_fonts("latin", system=False) if "Sans" in f.name]
    plain = RenderConfig(font_size=(40, 40), effects=EffectConfig.none())
    renderer = WordRenderer(seed=7, fonts=fonts, config=plain)
    for name, text in WORDS.items():
        image = renderer.render(text, np.random.default_rng(len(text)))
        Image.fromarray(image).save(HERE / name, quality=92)
    rows = np.linspace(170, 235, 320, dtype=np.float32)[:, None, None]
    tint = np.array([1.0, 0.97, 0.9], np.float32)
    scene = np.broadcast_to(rows * tint, (320, 480, 3)).astype(np.uint8).copy()
    for i, (text, (x, y)) in enumerate(SCENE_LINES):
        word = renderer.render(text, np.random.default_rng(100 + i))
        h, w = word.shape[:2]
        scene[y : y + h, x : x + w] = word[: 320 - y, : 480 - x]
    Image.fromarray(scene).save(HERE / "scene.jpg", quality=90)


if __name__ == "__main__":
    main()
