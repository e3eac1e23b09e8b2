"""Readers of region annotations the builder turns into queries: one :class:`AnnotatedImage` each.

* ``icdar``: the ICDAR-style JSONL (``{"image", "instances": [{"text", "points", "ignore"}]}``,
  as in ``shared/data/ic15_train``); ``###`` text or ``ignore: true`` marks don't-care regions.
* ``funsd``: a FUNSD folder (``images/*.png`` + ``annotations/*.json``), word-level regions.
* ``scene``: the same layout for any scene-layout source (``sroie_train``, ``docbank_sample``);
  a region's ``label`` may pick its own category (``label_categories``).
* ``jsonl``: the generic JSONL: ``{"image", "regions" | "instances": [{"text", "box" | "points",
  "ignore"?}], "category"?, "language"?, "width"?, "height"?}``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocrkit.tabench.schema import Shape

IGNORE_TEXTS = {"###", ""}
log = logging.getLogger(__name__)


@dataclass
class Region:
    text: str
    shape: Shape
    ignore: bool = False
    category: str | None = None  # the region's own category (from its layout label), if any


@dataclass
class AnnotatedImage:
    path: Path  # absolute
    regions: list[Region]
    category: str
    source: str
    language: str | None = None
    size: tuple[int, int] | None = None  # (width, height) when the annotation gives it
    meta: dict[str, Any] = field(default_factory=dict)


def _region(
    item: dict[str, Any], where: str, label_categories: dict[str, str] | None = None
) -> Region:
    text = str(item.get("text", item.get("transcription", "")) or "")
    shape = item.get("points") or item.get("polygon") or item.get("box") or item.get("bbox")
    if shape is None:
        raise ValueError(f"{where}: a region needs points or box")
    ignore = bool(item.get("ignore", False)) or text.strip() in IGNORE_TEXTS
    label = item.get("label")
    cat = (label_categories or {}).get(str(label)) if label is not None else None
    return Region(text=text, shape=shape, ignore=ignore, category=cat)


def read_jsonl(
    path: str | Path,
    category: str,
    source: str,
    label_categories: dict[str, str] | None = None,
) -> Iterator[AnnotatedImage]:
    """ICDAR-style or generic JSONL; image paths are relative to the JSONL file.

    ``label_categories`` maps a region's ``label`` (DocBank's layout class) to its own category;
    other regions keep the image's.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "annotations.jsonl"
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            rec = json.loads(line)
            items = rec.get("instances", rec.get("regions"))
            if "image" not in rec or not isinstance(items, list):
                raise ValueError(f"{path}:{n}: needs 'image' and an 'instances'/'regions' list")
            size = (int(rec["width"]), int(rec["height"])) if "width" in rec else None
            yield AnnotatedImage(
                path=Path(os.path.abspath(path.parent / rec["image"])),
                regions=[_region(it, f"{path}:{n}", label_categories) for it in items],
                category=str(rec.get("category", category)),
                source=str(rec.get("source", source)),
                language=rec.get("language"),
                size=size,
            )


def funsd_image(root: Path, stem: str) -> Path:
    """A FUNSD form's image: ``images/STEM.png`` (some releases hold ``.jpg`` pages too)."""
    for ext in (".png", ".jpg", ".jpeg"):
        path = root / "images" / f"{stem}{ext}"
        if path.is_file():
            return path
    return root / "images" / f"{stem}.png"


def read_funsd(root: str | Path, category: str = "document", source: str = "funsd"):
    """FUNSD forms: every word of every entity is one region (empty words are don't-care)."""
    root = Path(root)
    for ann in sorted((root / "annotations").glob("*.json")):
        image = funsd_image(root, ann.stem)
        if not image.is_file():
            log.warning("%s: no image %s.png/.jpg, skipped", ann, ann.stem)
            continue
        form = json.loads(ann.read_text(encoding="utf-8")).get("form", [])
        regions = [
            Region(
                text=str(w.get("text", "")),
                shape=w["box"],
                ignore=not str(w.get("text", "")).strip(),
            )
            for entity in form
            for w in entity.get("words", [])
        ]
        yield AnnotatedImage(
            path=Path(os.path.abspath(image)),
            regions=regions,
            category=category,
            source=source,
        )
