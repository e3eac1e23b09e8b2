"""Image files listed with labels: ``labels.tsv`` folders and PaddleOCR list files.

Both are one line per image, ``relative/path<TAB>label``, paths relative to a root folder (the
set folder for ``labels.tsv``; PaddleOCR's ``data_dir`` for list files). A line without a tab is
an image without a label; blank lines are ignored. A line that is not valid UTF-8 is decoded with
U+FFFD replacements and counted (as the LMDB reader does), never fatal; an image path that is
absolute or climbs out of the root is refused with the file and line.
"""

from __future__ import annotations

import logging
import posixpath
from pathlib import Path
from typing import Any

from ocrkit.data.base import RawImage, StrDataset

logger = logging.getLogger(__name__)


def read_label_list(
    list_file: str | Path, bad_lines: list[int] | None = None
) -> list[tuple[str, str | None]]:
    """Parse ``path<TAB>label`` lines into ``(path, label)`` pairs (label None without a tab).

    Lines that are not valid UTF-8 are decoded with replacement; their numbers are appended to
    ``bad_lines`` when it is given. Image paths are checked with :func:`check_relative_path`.
    """
    entries: list[tuple[str, str | None]] = []
    with open(list_file, "rb") as f:
        data = f.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for number, raw in enumerate(data.split(b"\n"), 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = raw.decode("utf-8", errors="replace")
            if bad_lines is not None:
                bad_lines.append(number)
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        path, tab, label = line.partition("\t")
        path = path.strip()
        check_relative_path(path, f"{list_file}:{number}")
        entries.append((path, label if tab else None))
    return entries


def check_relative_path(path: str, where: str) -> None:
    """Refuse an image path that is absolute or leaves its root folder (``../..``)."""
    norm = posixpath.normpath(path.replace("\\", "/"))
    if Path(path).is_absolute() or norm.startswith("/") or norm == ".." or norm.startswith("../"):
        raise ValueError(
            f"{where}: image path {path!r} leaves the set folder; paths must be relative to it"
        )


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
        bad: list[int] = []
        entries = read_label_list(list_file, bad)
        self.bad_labels = len(bad)  # lines that were not valid UTF-8 (decoded with replacement)
        if bad:
            logger.warning(
                "%s: %d label line(s) not valid UTF-8, bad bytes replaced with U+FFFD "
                "(first: %s:%d)",
                list_file,
                len(bad),
                list_file,
                bad[0],
            )
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
