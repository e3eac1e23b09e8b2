"""Held-apart image splits: which images a bench may use, and overlap checks against training.

A split file (JSON, committed: ``ocrkit/tabench/splits/tabench_local.json``) lists, per source
folder (``ic15_train``, ...), the images held apart for the bench with the SHA-256 of each file.
Training data never uses them; the bench uses only them. Both builders check it by path (the
source folder name plus the image path inside it) and by file hash (a copy under another name).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

SPLIT_DIR = Path(__file__).parent / "splits"
NAMED = {"tabench-local": SPLIT_DIR / "tabench_local.json"}


@lru_cache(maxsize=65536)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (memoized per path, size and modification time)."""
    st = Path(path).stat()
    return _sha256(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)


@dataclass
class Split:
    """``sources[source][image path inside the source folder] = sha256`` of held-apart images."""

    name: str
    sources: dict[str, dict[str, str]]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.keys = {f"{s}/{rel}" for s, images in self.sources.items() for rel in images}
        self.hashes = {
            h: f"{s}/{rel}" for s, images in self.sources.items() for rel, h in images.items()
        }

    def path_key(self, path: str | Path) -> str | None:
        """``source/rel`` when ``path`` ends with a held-apart image's key, else None."""
        parts = Path(path).parts
        for k in range(2, min(5, len(parts)) + 1):
            key = "/".join(parts[-k:])
            if key in self.keys:
                return key
        return None

    def match(self, path: str | Path) -> str | None:
        """Why ``path`` is a held-apart image (``path ...`` or ``hash ...``), or None."""
        key = self.path_key(path)
        if key is not None:
            return f"path {key}"
        try:
            digest = file_sha256(path)
        except OSError:
            return None
        return f"hash of {self.hashes[digest]}" if digest in self.hashes else None

    def held_out(self, source: str, rel: str) -> bool:
        return rel in self.sources.get(source, {})


def load_split(spec: str | Path) -> Split:
    """A split by name (``tabench-local``) or JSON path."""
    path = NAMED.get(str(spec), Path(spec))
    if not Path(path).is_file():
        raise ValueError(f"split {spec!r}: no such file; named splits: {sorted(NAMED)}")
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    sources = {s: dict(v["held_out"]) for s, v in data["sources"].items()}
    meta = {k: v for k, v in data.items() if k != "sources"}
    return Split(str(data.get("name", Path(path).stem)), sources, meta)


def make_split(
    roots: Mapping[str, Path], counts: Mapping[str, int | None], seed: int = 42
) -> dict[str, Any]:
    """Draw ``counts[source]`` images of each source folder (None: all) with ``Random(seed)``
    over the sorted image list, plus any byte-identical copies of them; returns the ``sources``
    part of a split file."""
    out: dict[str, Any] = {}
    for source, root in roots.items():
        images = sorted(
            p.relative_to(root).as_posix()
            for p in (Path(root) / "images").iterdir()
            if p.suffix.lower() in {".jpg", ".jpeg", ".png"}
        )
        n = counts.get(source)
        chosen = images if n is None else random.Random(seed).sample(images, n)
        digests = {rel: file_sha256(Path(root) / rel) for rel in images}
        held = {digests[rel] for rel in chosen}
        # a byte-identical copy of a held-apart image is held apart with it
        out[source] = {
            "total": len(images),
            "held_out": {rel: digests[rel] for rel in images if digests[rel] in held},
        }
    return out


def image_files(root: str | Path) -> list[Path]:
    """Every image file under a folder (or the one file given)."""
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def overlaps(bench: Iterable[Path], train: Iterable[Path]) -> list[str]:
    """Bench images that are also training images, by resolved path or by file hash."""
    train = [Path(p).resolve() for p in train]
    by_path = set(train)
    by_hash: dict[str, Path] = {}
    for p in train:
        by_hash.setdefault(file_sha256(p), p)
    found = []
    for p in dict.fromkeys(Path(b).resolve() for b in bench):
        if p in by_path:
            found.append(f"{p} (same path)")
        elif file_sha256(p) in by_hash:
            found.append(f"{p} (same bytes as training image {by_hash[file_sha256(p)]})")
    return found
