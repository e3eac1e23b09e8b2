"""Image files listed with labels: ``labels.tsv`` folders and PaddleOCR list files.

Both are one line per image, ``relative/path<TAB>label``, paths relative to a root folder (the
set folder for ``labels.tsv``; PaddleOCR's ``data_dir`` for list files). A line without a tab is
an image without a label; blank lines are ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ocrkit.data.base import RawImage, StrDataset


def read_label_list(list_file: str | Path) -> list[tuple[str, str | None]]:
    """Parse ``path<TAB>label`` lines into ``(path, label)`` pairs (label None without a tab)."""
    entries: list[tuple[str, str | None]] = []
    with open(list_file, encoding="utf-8-sig") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            path, tab, label = line.partition("\t")
            entries.append((path.strip(), label if tab else None))
    return entries


class ListDataset(StrDataset):
    """Images named in a list file, read from ``root`` (default: the list file's folder)."""

    def __init__(self, list_file: str | Path, root: str | Path | None = None, **kwargs: Any):
        list_file = Path(list_file)
        if not list_file.is_file():
            raise FileNotFoundError(f"label list {list_file} does not exist")
        self.root = Path(root) if root is not None else list_file.parent
        if not self.root.is_dir():
            raise FileNotFoundError(f"image root {self.root} is not a folder")
        kwargs.setdefault("name", list_file.parent.name if root is None else list_file.stem)
        super().__init__(**kwargs)
        entries = read_label_list(list_file)
        self.paths = [p for p, _ in entries]
        self.raw_labels = [label for _, label in entries]
        self._init_labels(self.raw_labels)

    def _key(self, j: int) -> str:
        return self.paths[j]

    def _load(self, j: int) -> tuple[RawImage, str | None, str]:
        rel = self.paths[j]
        return (self.root / rel).read_bytes(), self.raw_labels[j], rel


def folder_dataset(path: str | Path, labels_file: str = "labels.tsv", **kwargs: Any) -> ListDataset:
    """A set folder holding ``labels.tsv`` (``images/1.jpg<TAB>label``) and its images."""
    path = Path(path)
    list_file = path / labels_file
    if not list_file.is_file():
        raise FileNotFoundError(f"{path} has no {labels_file}; expected 'images/N.jpg<TAB>label'")
    kwargs.setdefault("name", path.name)
    return ListDataset(list_file, root=path, **kwargs)


def paddle_dataset(path: str | Path, root: str | Path | None = None, **kwargs: Any) -> ListDataset:
    """A PaddleOCR recognition list file (``path<TAB>label``) with images under ``root``."""
    kwargs.setdefault("name", Path(path).stem)
    return ListDataset(path, root=root, **kwargs)
