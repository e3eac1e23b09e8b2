"""Image inputs of the command line: files, folders and glob patterns, read one by one.

A bad input never stops a run: :func:`expand_images` reports items that name nothing and
:func:`read_images` reports each file that does not decode (which file, why), and the command
reads the rest and exits non-zero at the end. Torch-free.
"""

from __future__ import annotations

import glob
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")


def _images_in(folder: Path) -> list[str]:
    files = (p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return sorted(str(p) for p in files)


def expand_images(items: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Image paths of ``items`` (a file as given; a folder: its image files, recursively, by
    name; a glob pattern such as ``'crops/*.png'`` or ``'crops/**/*.jpg'``: its matches, by
    name) and ``(item, why)`` for each item that gives none."""
    paths: list[str] = []
    problems: list[tuple[str, str]] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = _images_in(path)
            if not found:
                problems.append((item, f"folder has no image files ({', '.join(IMAGE_SUFFIXES)})"))
            paths.extend(found)
        elif path.exists():
            paths.append(item)
        elif glob.has_magic(item):
            matches = sorted(glob.glob(item, recursive=True))
            found = [m for m in matches if Path(m).is_file()]
            for folder in (Path(m) for m in matches if Path(m).is_dir()):
                found.extend(_images_in(folder))
            if not found:
                problems.append((item, "no file matches this pattern"))
            paths.extend(found)
        else:
            problems.append((item, "no such file or folder"))
    return paths, problems


def read_images(paths: Sequence[str]) -> Iterator[tuple[str, np.ndarray | None, str | None]]:
    """``(path, RGB array, None)`` per readable file, ``(path, None, why)`` per unreadable one."""
    from ocrkit.models.preprocess import to_rgb_array

    for path in paths:
        try:
            yield path, to_rgb_array(path), None
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            yield path, None, why.removeprefix(f"{path}: ")


def report_skipped(command: str, problems: Sequence[tuple[str, str]]) -> None:
    """One stderr line per skipped input: ``ocrkit COMMAND: skipped PATH: WHY``."""
    for item, why in problems:
        print(f"ocrkit {command}: skipped {item}: {why}", file=sys.stderr)


def read_one_image(path: str, loader: Callable[[str], np.ndarray] | None = None) -> np.ndarray:
    """The image file one argument names, or :class:`~ocrkit.cli.CliError` saying which and why
    (a folder, a missing file, a file that is not an image). ``loader`` defaults to ocrkit's
    image reader."""
    from ocrkit.cli import CliError

    if Path(path).is_dir():
        raise CliError(f"{path} is a folder; this command reads one image file")
    if loader is None:
        from ocrkit.models.preprocess import to_rgb_array as loader
    try:
        return loader(path)
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CliError(f"cannot read {path} as an image: {why.removeprefix(f'{path}: ')}") from None
