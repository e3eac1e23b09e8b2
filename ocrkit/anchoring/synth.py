"""Synthetic anchoring scenes: rendered words pasted on plain canvases (Q-Mask ``synth`` data).

:func:`render_scenes` writes the images and an ICDAR-style ``annotations.jsonl`` that
:func:`ocrkit.anchoring.generate.build_instances` reads back through the same path as real
region annotations.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ocrkit.utils.progress import progress


def _canvas(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    base = rng.integers(0, 256, 3).astype(np.float32)
    grad = np.linspace(0, 1, width, dtype=np.float32)[None, :, None] * rng.uniform(-60, 60, 3)
    noise = rng.normal(0, rng.uniform(0, 12), (height, width, 1)).astype(np.float32)
    return np.clip(base + grad + noise, 0, 255).astype(np.uint8)


def render_scene(
    renderer: Any, index: int, size: tuple[int, int] = (448, 336), words: tuple[int, int] = (3, 8)
):
    """One synthetic scene: ``(image, [(text, [x1, y1, x2, y2]), ...])``; deterministic per index."""
    import cv2

    rng = np.random.default_rng([renderer.seed, 7919, int(index)])
    width, height = size if rng.random() < 0.5 else size[::-1]
    image = _canvas(rng, width, height)
    placed: list[tuple[str, list[int]]] = []
    want = int(rng.integers(words[0], words[1] + 1))
    for k in range(want * 4):
        if len(placed) == want:
            break
        crop, text = renderer.sample(int(index) * 64 + k)
        h = int(rng.integers(14, 44))
        w = max(4, int(round(crop.shape[1] * h / crop.shape[0])))
        if w >= width - 4 or h >= height - 4:
            continue
        x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
        box = [x, y, x + w, y + h]
        if any(
            not (box[2] <= b[0] or b[2] <= box[0] or box[3] <= b[1] or b[3] <= box[1])
            for _, b in placed
        ):
            continue
        image[y : y + h, x : x + w] = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
        placed.append((text, box))
    return image, placed


def render_scenes(out_dir: str | Path, num_images: int, seed: int = 0) -> Path:
    """Write ``num_images`` scenes and an ICDAR-style ``annotations.jsonl``; return its path."""
    import cv2

    from ocrkit.data.render import RenderConfig, WordRenderer
    from ocrkit.utils.io import atomic_write_text

    out = Path(out_dir)
    target = out / "annotations.jsonl"
    if target.is_file():
        return target
    (out / "images").mkdir(parents=True, exist_ok=True)
    renderer = WordRenderer(seed=seed, config=RenderConfig(font_size=(28, 48)))
    lines = []
    for i in progress(range(num_images), desc="synthetic scenes", unit="img"):
        image, placed = render_scene(renderer, i)
        name = f"images/scene_{i:06d}.png"
        cv2.imwrite(str(out / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        inst = [
            {"text": t, "points": [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]]}
            for t, b in placed
        ]
        lines.append(
            json.dumps(
                {
                    "image": name,
                    "width": image.shape[1],
                    "height": image.shape[0],
                    "instances": inst,
                }
            )
        )
    atomic_write_text(target, "\n".join(lines) + "\n")
    return target
