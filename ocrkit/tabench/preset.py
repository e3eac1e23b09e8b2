"""Bench inputs with their train/test guard: sources, a held-apart split, the metadata file.

``gather`` reads every ``--scene``/``--icdar``/``--funsd``/``--jsonl`` source; with a split it
keeps only the held-apart images of each source (and refuses a source the split does not name
or an image whose bytes changed). The images of those sources that are not held apart, plus any
``--train`` folder, are training images: a bench image equal to one of them by path or by file
hash is refused (``allow_overlap``: a loud warning instead).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocrkit.tabench.sources import AnnotatedImage, read_funsd, read_jsonl
from ocrkit.tabench.split import Split, file_sha256, image_files, overlaps

log = logging.getLogger(__name__)


@dataclass
class SourceSpec:
    kind: str  # scene | funsd | jsonl
    path: str
    category: str
    label_categories: dict[str, str] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        p = Path(os.path.abspath(self.path))  # as given: links are not resolved
        return p.parent if p.is_file() else p

    def read(self) -> list[AnnotatedImage]:
        name = self.root.name
        if self.kind == "funsd":
            return list(read_funsd(self.path, self.category, source=name))
        return list(read_jsonl(self.path, self.category, name, self.label_categories or None))


def preset_specs(split: Split, data: str | Path) -> tuple[list[SourceSpec], list[Path], dict]:
    """The sources, training folders and quotas a split file's ``build`` section names."""
    build = split.meta.get("build")
    if not build:
        raise ValueError(f"split {split.name!r} has no build section")
    specs = [
        SourceSpec(s["kind"], str(Path(data) / s["source"]), s["category"], s.get("labels", {}))
        for s in build["sources"]
    ]
    train = [Path(data) / t for t in build.get("train", [])]
    return specs, train, dict(build.get("quotas", {}))


def gather(
    specs: list[SourceSpec],
    split: Split | None = None,
    train: list[Path] | None = None,
    allow_overlap: bool = False,
) -> tuple[list[AnnotatedImage], list[Path]]:
    """The bench images of ``specs`` and the training images they were checked against."""
    bench: list[AnnotatedImage] = []
    train_images = [p for t in train or [] for p in image_files(t)]
    for spec in specs:
        images = spec.read()
        if split is None:
            bench += images
            continue
        source = spec.root.name
        if source not in split.sources:
            raise ValueError(f"split {split.name!r} names no source {source!r} ({spec.path})")
        for img in images:
            rel = Path(os.path.relpath(img.path, spec.root)).as_posix()
            if split.held_out(source, rel):
                if file_sha256(img.path) != split.sources[source][rel]:
                    raise ValueError(f"{img.path}: bytes differ from split {split.name!r}")
                bench.append(img)
            else:
                train_images.append(img.path)
    if split is None and not train_images:
        log.warning("no --split or --train given: bench/training overlap is not checked")
    found = overlaps([img.path for img in bench], train_images)
    if found:
        msg = f"{len(found)} bench image(s) are also training images, e.g. {found[0]}"
        if not allow_overlap:
            raise ValueError(msg + " (pass --allow-overlap to build anyway)")
        log.warning("WARNING: %s", msg)
        print(f"WARNING: {msg}")
    return bench, train_images


def bench_meta(
    specs: list[SourceSpec],
    split: Split | None,
    t2r_shape: str,
    seed: int,
    quotas: dict[str, int],
    n_train: int,
) -> dict[str, Any]:
    """What the ``<bench>.meta.json`` beside a bench records."""
    return {
        "t2r_targets": "axis-aligned boxes [x1, y1, x2, y2]"
        if t2r_shape == "box"
        else "annotated polygons (option t2r_shape=polygon)",
        "t2r_shape": t2r_shape,
        "seed": seed,
        "quotas": quotas,
        "sources": [
            {
                "kind": s.kind,
                "source": s.root.name,
                "category": s.category,
                "labels": s.label_categories,
            }
            for s in specs
        ],
        "split": split.name if split else None,
        "overlap_checked_against": n_train,
    }


def meta_path(bench: str | Path) -> Path:
    """``bench.jsonl`` -> ``bench.meta.json``."""
    bench = Path(bench)
    return bench.with_name(bench.stem + ".meta.json")
