"""Render many samples, in parallel if asked, into an STR-layout LMDB.

Workers render disjoint indices with :meth:`WordRenderer.sample` and results are consumed in index
order, so the LMDB is byte-identical for any ``num_workers``.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ocrkit.data.render.fonts import FontSpec
from ocrkit.data.render.renderer import RenderConfig, WordRenderer
from ocrkit.data.render.words import WordConfig, WordSource

logger = logging.getLogger(__name__)

_WORKER: tuple[WordRenderer, str, int] | None = None


def _init_worker(renderer: WordRenderer, image_format: str, quality: int) -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core already; avoid oversubscription
    global _WORKER
    _WORKER = (renderer, image_format, quality)


def _render_encoded(index: int) -> tuple[bytes, str]:
    from ocrkit.data.image_io import encode_image

    assert _WORKER is not None, "worker not initialised"
    renderer, image_format, quality = _WORKER
    image, text = renderer.sample(index)
    return encode_image(image, image_format, quality), text


def iter_encoded(
    renderer: WordRenderer,
    indices: Sequence[int],
    num_workers: int = 0,
    image_format: str = ".png",
    quality: int = 95,
) -> Iterator[tuple[bytes, str]]:
    """Yield ``(encoded image, word)`` for ``indices`` in order, rendered by ``num_workers``
    spawned processes (0: in this process)."""
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    if num_workers == 0:
        _init_worker(renderer, image_format, quality)
        yield from map(_render_encoded, indices)
        return
    chunksize = max(1, min(64, len(indices) // (4 * num_workers)))
    context = mp.get_context("spawn")  # fork after OpenCV/torch threads start can deadlock
    with context.Pool(
        num_workers, initializer=_init_worker, initargs=(renderer, image_format, quality)
    ) as pool:
        yield from pool.imap(_render_encoded, indices, chunksize=chunksize)


def render_to_lmdb(
    out_dir: str | Path,
    num_samples: int,
    seed: int = 0,
    words: WordSource | WordConfig | None = None,
    num_workers: int = 0,
    *,
    fonts: Sequence[FontSpec] | None = None,
    config: RenderConfig | None = None,
    background_dir: str | Path | None = None,
    image_format: str = ".png",
    quality: int = 95,
    overwrite: bool = False,
) -> int:
    """Render samples ``0 .. num_samples - 1`` of ``WordRenderer(seed, ...)`` into an LMDB.

    Images are stored as ``image_format`` (lossless ``.png`` by default: JPEG artefacts are
    already one of the random effects). Returns the number written and logs images/s.
    """
    from ocrkit.data.lmdb import write_lmdb

    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    renderer = WordRenderer(
        seed=seed, fonts=fonts, words=words, config=config, background_dir=background_dir
    )
    start = time.perf_counter()
    samples = iter_encoded(renderer, range(num_samples), num_workers, image_format, quality)
    count = write_lmdb(out_dir, samples, total=num_samples, overwrite=overwrite)
    seconds = time.perf_counter() - start
    logger.debug(  # the CLI prints its own summary line
        "rendered %d images to %s in %.1f s (%.1f images/s, %d workers)",
        count,
        out_dir,
        seconds,
        count / max(seconds, 1e-9),
        num_workers,
    )
    return count
