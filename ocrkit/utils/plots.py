"""Image grids for people who would rather look than read (samples, predictions)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ocrkit.utils.io import atomic_path


def save_image_grid(
    images: Sequence[np.ndarray],
    titles: Sequence[str],
    path: str | Path,
    colors: Sequence[str] | None = None,
    cols: int = 4,
) -> None:
    """Write a PNG grid of RGB images with a title under each (coloured if ``colors`` given)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(1, -(-len(images) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 3, rows * 1.3), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, image, title) in enumerate(zip(axes.flat, images, titles)):
        ax.imshow(image)
        ax.set_title(title, fontsize=8, color=colors[i] if colors else "black")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
