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
* T2R targets are axis-aligned boxes ``[x1, y1, x2, y2]`` (the paper's ground truth and model
  outputs are boxes; an ICDAR quadrilateral becomes its enclosing box); ``t2r_shape="polygon"``
  keeps the annotated polygons (ocrkit's behaviour before the fidelity pass).
* A region with its own category (a DocBank layout label mapped by ``label_categories``) gives
  its R2T query that category; a T2R query takes its members' category when they all share one,
  else the image's (all instances of a string in an image stay one query, as S1 merges them).
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
from ocrkit.tabench.prompts import r2t_prompt, t2r_prompt
from ocrkit.tabench.schema import Query
from ocrkit.tabench.sources import AnnotatedImage
from ocrkit.utils.progress import progress

SEED = 42
MULTIPLE = 5
T2R_SHAPES = ("box", "polygon")


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


def image_candidates(img: AnnotatedImage, bench_dir: Path, t2r_shape: str = "box") -> Candidates:
    """All R2T and T2R candidate queries of one image (ids are filled in later)."""
    if t2r_shape not in T2R_SHAPES:
        raise ValueError(f"t2r_shape must be one of {T2R_SHAPES}, got {t2r_shape!r}")
    if img.size is None:
        from ocrkit.data.image_io import image_size

        img.size = image_size(img.path)  # after EXIF orientation, as every reader sees it
    width, height = img.size
    rel = os.path.relpath(img.path, bench_dir)
    common = dict(image=rel, width=width, height=height, source=img.source)
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
                category=r.category or img.category,
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
        clip = _clip_box if t2r_shape == "box" else _clip_shape
        shapes = [clip(r.shape, width, height) for r in members]
        lang = img.language or guess_language(text)
        cats = {r.category or img.category for r in members}
        t2r.append(
            Query(
                id="",
                task="t2r",
                prompt=t2r_prompt(text),
                text=text,
                boxes=shapes,
                language=lang,
                category=cats.pop() if len(cats) == 1 else img.category,
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
    t2r_shape: str = "box",
) -> list[Query]:
    """Sample the bench for ``bench_path`` (image paths become relative to its folder).

    ``quotas`` maps a category to its total number of queries (both directions); categories
    without a quota keep every query they can while staying balanced. ``t2r_shape``: ``box``
    (default, the paper's) or ``polygon`` T2R targets.
    """
    bench_dir = Path(os.path.abspath(bench_path)).parent  # as given: links are not resolved
    pools: dict[str, Candidates] = {}
    for img in progress(images, desc="reading annotations", unit="img"):
        c = image_candidates(img, bench_dir, t2r_shape)
        for q in c.r2t:
            pools.setdefault(q.category, Candidates([], [])).r2t.append(q)
        for q in c.t2r:
            pools.setdefault(q.category, Candidates([], [])).t2r.append(q)
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
