"""Query-based attention maps of an encoder's last layer, drawn over the image (MNSP Fig. 3).

For a query token -- the [CLS] token, one patch, or the mean over all patch queries -- the last
block's softmax attention over the patch keys (heads averaged, or one head) is laid out on the
patch grid, renormalized over patches, upsampled to the image and drawn as a heat map. Works for
any :class:`~ocrkit.models.TextViT` encoder: a pretraining folder, a recognizer's backbone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ocrkit.data.transforms import StrTransform

Query = str | tuple[int, int]


def parse_query(text: str) -> Query:
    """``cls``, ``mean`` or ``ROW,COL`` (a patch on the grid, 0-based)."""
    if text in ("cls", "mean"):
        return text
    try:
        row, col = (int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"query {text!r}: use cls, mean or ROW,COL (e.g. 4,10)") from None
    return row, col


@torch.no_grad()
def attention_map(
    encoder: nn.Module,
    image: np.ndarray,
    query: Query = "cls",
    head: int | None = None,
    img_size: Sequence[int] = (32, 128),
) -> np.ndarray:
    """Attention of ``query`` over the patch grid ``[h, w]`` (sums to 1) for an RGB image."""
    if not callable(getattr(encoder, "get_last_attention", None)):
        raise ValueError(
            f"{type(encoder).__name__} does not expose its attention; attention maps need a "
            "ViT encoder (vit_tiny/small/base)"
        )
    x = StrTransform(img_size)(image).unsqueeze(0).to(next(encoder.parameters()).device)
    attn = encoder.get_last_attention(x)[0]  # [heads, 1 + N, 1 + N]
    if head is not None:
        if not 0 <= head < attn.shape[0]:
            raise ValueError(f"head {head} out of range: the encoder has {attn.shape[0]} heads")
        attn = attn[head : head + 1]
    attn = attn.mean(0)[:, 1:]  # keys: patches only
    grid = encoder.grid_size(int(img_size[0]), int(img_size[1]))
    if query == "cls":
        row = attn[0]
    elif query == "mean":
        row = attn[1:].mean(0)
    else:
        r, c = query
        if not (0 <= r < grid[0] and 0 <= c < grid[1]):
            raise ValueError(f"query patch {r},{c} is outside the {grid[0]}x{grid[1]} grid")
        row = attn[1 + r * grid[1] + c]
    row = row / row.sum()
    return row.reshape(grid).float().cpu().numpy()


def draw_attention(
    images: Sequence[np.ndarray],
    maps: Sequence[Sequence[np.ndarray]],
    names: Sequence[str],
    out: str | Path,
    query: Query = "cls",
    img_size: Sequence[int] = (32, 128),
    alpha: float = 0.55,
    titles: Sequence[str] | None = None,
) -> Path:
    """One row per image: the input, then each encoder's map over it. ``maps[i][j]`` is image
    ``i``, encoder ``names[j]``. Each map is scaled to its own min-max for display and labelled
    with its peak relative to a uniform map (so a flat map is not mistaken for a focused one).
    Written as a PNG (atomically)."""
    import matplotlib.pyplot as plt

    from ocrkit.utils.io import atomic_write

    fig = attention_figure(images, maps, names, query, img_size, alpha, titles)
    out = Path(out)
    atomic_write(out, lambda p: fig.savefig(p, dpi=150, format="png"))
    plt.close(fig)
    return out


def _fit(text: str, width_in: float, fontsize: float, lines: int = 1) -> str:
    """``text`` wrapped to ``width_in`` inches at ``fontsize`` points (about 0.6 em per
    character), at most ``lines`` lines, the last shortened with an ellipsis."""
    import textwrap

    chars = max(4, int(width_in * 72 / (0.6 * fontsize)))
    wrapped = textwrap.wrap(text, chars) or [""]
    if len(wrapped) > lines:
        wrapped = wrapped[:lines]
        wrapped[-1] = wrapped[-1][: chars - 1].rstrip() + "…"
    return "\n".join(wrapped)


def attention_figure(
    images: Sequence[np.ndarray],
    maps: Sequence[Sequence[np.ndarray]],
    names: Sequence[str],
    query: Query = "cls",
    img_size: Sequence[int] = (32, 128),
    alpha: float = 0.55,
    titles: Sequence[str] | None = None,
):
    """The matplotlib figure :func:`draw_attention` writes; every title is wrapped or shortened
    to its column (the overall title to the figure), so none is clipped."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h, w = int(img_size[0]), int(img_size[1])
    cols = 1 + len(names)
    col_in = 2.6
    label = query if isinstance(query, str) else f"patch {query[0]},{query[1]}"
    suptitle = _fit(
        f"last-layer attention, query = {label} (each map scaled min-max; peak = max / uniform)",
        col_in * cols,
        9,
        lines=4,
    )
    top_in = 0.2 + 0.17 * (suptitle.count("\n") + 1)
    fig, axes = plt.subplots(
        len(images), cols, figsize=(col_in * cols, 0.9 * len(images) + top_in), squeeze=False
    )
    for i, image in enumerate(images):
        shown = cv2.resize(image, (w, h), interpolation=cv2.INTER_CUBIC)
        axes[i][0].imshow(shown)
        axes[i][0].set_title(_fit(titles[i] if titles else "input", col_in, 8), fontsize=8)
        for j, name in enumerate(names):
            grid = maps[i][j]
            span = float(grid.max() - grid.min())
            norm = (grid - grid.min()) / span if span > 0 else np.zeros_like(grid)
            heat = cv2.resize(norm, (w, h), interpolation=cv2.INTER_NEAREST)
            ax = axes[i][j + 1]
            ax.imshow(shown)
            ax.imshow(heat, cmap="jet", alpha=alpha, vmin=0.0, vmax=1.0)
            # how peaked the map is: its maximum relative to a uniform map (1x = uniform)
            ax.text(
                1,
                1,
                f"peak {grid.max() * grid.size:.1f}x",
                color="white",
                fontsize=6,
                va="top",
                bbox={"facecolor": "black", "alpha": 0.5, "pad": 1, "lw": 0},
            )
            if isinstance(query, tuple):  # outline the query patch
                ph, pw = h / grid.shape[0], w / grid.shape[1]
                r, c = query
                rect = plt.Rectangle(
                    (c * pw - 0.5, r * ph - 0.5), pw, ph, fill=False, ec="white", lw=1.2
                )
                ax.add_patch(rect)
            if i == 0:
                ax.set_title(_fit(name, col_in, 8), fontsize=8)
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(suptitle, fontsize=9)
    height = fig.get_size_inches()[1]
    fig.tight_layout(rect=(0, 0, 1, 1 - (top_in - 0.1) / height))
    return fig
