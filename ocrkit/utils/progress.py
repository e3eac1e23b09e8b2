"""Progress bars that switch themselves off when output is not a terminal or in CI."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress_enabled() -> bool:
    if os.environ.get("OCRKIT_PROGRESS") in {"0", "1"}:
        return os.environ["OCRKIT_PROGRESS"] == "1"
    return sys.stderr.isatty()


def progress(iterable: Iterable[T] | None = None, **kwargs: Any) -> tqdm:
    """``tqdm`` with ocrkit defaults (disabled when not interactive unless forced)."""
    kwargs.setdefault("disable", not progress_enabled())
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("leave", False)
    return tqdm(iterable, **kwargs)
