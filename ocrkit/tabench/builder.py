"""Build a TABench file from region annotations (Q-Mask paper, Supplementary S1).

* R2T: one candidate per legible region; the target is its transcript and the region is its
  axis-aligned box in absolute pixels; prompt ``What is the text at location [x1, y1, x2, y2]?``.
* T2R: the strings of one image are canonicalized (:func:`~ocrkit.tabench.normalize.canonicalize`:
  NFKC, no whitespace, no English/CJK punctuation); all instances sharing a canonical string form
  one query whose target is the set of their boxes; prompt ``Where is "TEXT" located in the
  image?`` with the most frequent original spelling.
* Don't-care regions (``###``, ``ignore``) are never targets and never queried.
* Quotas per category: R2T and T2R get equal counts, rounded down to a multiple of 5, drawn with a
  fixed seed (42).
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ocrkit.tabench.geometry import bounding_box
from ocrkit.tabench.normalize import canonicalize, guess_language
from ocrkit.tabench.schema import Query, r2t_prompt, t2r_prompt
from ocrkit.tabench.sources import AnnotatedImage
from ocrkit.utils.progress import progress

SEED = 42
MULTIPLE = 5


@dataclass
class Candidates:
    r2t: list[Query]
    t2r: list[Query]


def _clip_box(shape, width: int, height: int) -> list[int]:
    x1, y1, x2, y2 = bounding_box(shape)
    return [
        max(0, min(width, int(round(x1)))),
        max(0, min(height, int(round(y1)))),
        max(0, min(width, int(round(x2)))),
        max(0, min(height, int(round(y2)))),
    ]


def _clip_shape(shape, width: int, height: int):
    if shape and isinstance(shape[0], (list, tuple)):
        return [
            [max(0, min(width, round(float(x)))), max(0, min(height, round(float(y))))]
            for x, y in shape
        ]
    return _clip_box(shape, width, height)


def image_candidates(img: AnnotatedImage, bench_dir: Path) -> Candidates:
    """All R2T and T2R candidate queries of one image (ids are filled in later)."""
    if img.size is None:
        from PIL import Image

        with Image.open(img.path) as im:
            img.size = im.size
    width, height = img.size
    rel = os.path.relpath(img.path, bench_dir)
    common = dict(image=rel, width=width, height=height, category=img.category, source=img.source)
    legible = [r for r in img.regions if not r.ignore and r.text.strip()]
    r2t = []
    for r in legible:
        box = _clip_box(r.shape, width, height)
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            continue
        text = r.text.strip()
        lang = img.language or guess_language(text)
        r2t.append(
            Query(
                id="",
                task="r2t",
                prompt=r2t_prompt(box),
                text=text,
                box=box,
                language=lang,
                **common,
            )
        )
    groups: dict[str, list] = {}
    for r in legible:
        key = canonicalize(r.text)
        if key:
            groups.setdefault(key, []).append(r)
    t2r = []
    for members in groups.values():
        text = Counter(r.text.strip() for r in members).most_common(1)[0][0]
        shapes = [_clip_shape(r.shape, width, height) for r in members]
        lang = img.language or guess_language(text)
        t2r.append(
            Query(
                id="",
                task="t2r",
                prompt=t2r_prompt(text),
                text=text,
                boxes=shapes,
                language=lang,
                **common,
            )
        )
    return Candidates(r2t, t2r)


def per_direction(quota: int | None, n_r2t: int, n_t2r: int) -> int:
    """Queries per direction for one category: half the quota (or all there is), equal in both
    directions, rounded down to a multiple of 5."""
    n = min(n_r2t, n_t2r) if quota is None else min(quota // 2, n_r2t, n_t2r)
    return n // MULTIPLE * MULTIPLE


def build_bench(
    images: Iterable[AnnotatedImage],
    bench_path: str | Path,
    quotas: Mapping[str, int] | None = None,
    seed: int = SEED,
) -> list[Query]:
    """Sample the bench for ``bench_path`` (image paths become relative to its folder).

    ``quotas`` maps a category to its total number of queries (both directions); categories
    without a quota keep every query they can while staying balanced.
    """
    bench_dir = Path(bench_path).resolve().parent
    pools: dict[str, Candidates] = {}
    for img in progress(images, desc="reading annotations", unit="img"):
        c = image_candidates(img, bench_dir)
        pool = pools.setdefault(img.category, Candidates([], []))
        pool.r2t += c.r2t
        pool.t2r += c.t2r
    quotas = dict(quotas or {})
    unknown = set(quotas) - set(pools)
    if unknown:
        raise ValueError(f"quota for unknown categories {sorted(unknown)}; have {sorted(pools)}")
    rng = random.Random(seed)
    out: list[Query] = []
    for category in sorted(pools):
        pool = pools[category]
        k = per_direction(quotas.get(category), len(pool.r2t), len(pool.t2r))
        for task, cands in (("r2t", pool.r2t), ("t2r", pool.t2r)):
            chosen = rng.sample(cands, k)
            chosen.sort(key=lambda q: (q.image, q.text, json.dumps(q.box or q.boxes)))
            for i, q in enumerate(chosen):
                q.id = f"{category}-{task}-{i:05d}"
                out.append(q)
    return out
