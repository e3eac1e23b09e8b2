"""Word renderer throughput (images/s) against a plain PIL text draw measured in the same run.

    python benchmarks/render_speed.py [--num 500] [--workers 2]

Reference: the same words drawn black-on-white with ``ImageDraw.text`` in one cached font, the
least any renderer must do. Ratios are renderer time over reference time (higher = slower).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from PIL import Image, ImageDraw

from ocrkit.data.render.effects import EffectConfig
from ocrkit.data.render.export import iter_encoded
from ocrkit.data.render.fonts import list_fonts, load_font
from ocrkit.data.render.renderer import RenderConfig, WordRenderer
from ocrkit.data.render.words import WordConfig, WordSource
from ocrkit.utils.hardware import describe_hardware


def rate(fn, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    fonts = [f for f in list_fonts("latin", system=False) if "cjk" not in f.scripts]
    source = WordSource(WordConfig(lang="en"))
    words = [source.sample(np.random.default_rng([0, i])) for i in range(args.num)]
    font = load_font(fonts[0], 48)

    def pil_draw(i: int) -> np.ndarray:
        left, top, right, bottom = font.getbbox(words[i])
        img = Image.new("RGB", (right - left + 8, bottom - top + 8), "white")
        ImageDraw.Draw(img).text((4 - left, 4 - top), words[i], fill="black", font=font)
        return np.asarray(img)

    full = WordRenderer(seed=0, fonts=fonts, words=source)
    plain = WordRenderer(
        seed=0, fonts=fonts, words=source, config=RenderConfig(effects=EffectConfig.none())
    )
    pil_draw(0), full.sample(0), plain.sample(0)  # warm font caches

    ref = rate(pil_draw, args.num)
    rows = [
        ("plain PIL draw (reference)", ref),
        ("WordRenderer, no effects", rate(plain.sample, args.num)),
        ("WordRenderer, all effects", rate(full.sample, args.num)),
    ]
    for workers in (0, args.workers):
        start = time.perf_counter()
        count = sum(1 for _ in iter_encoded(full, range(args.num), num_workers=workers))
        rows.append(
            (f"effects + PNG encode, {workers} workers", count / (time.perf_counter() - start))
        )

    print(f"hardware: {describe_hardware()}")
    print(f"{args.num} English words, font size 32..64, {len(fonts)} fonts")
    print(f"{'what':40s} {'images/s':>10s} {'x slower than ref':>18s}")
    for name, r in rows:
        print(f"{name:40s} {r:10.1f} {ref / r:18.2f}")


if __name__ == "__main__":
    main()
