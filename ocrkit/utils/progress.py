"""Progress on long work: a live bar on a terminal, a plain status line every 30 s otherwise.

A bar redrawn with carriage returns is unreadable in a log file, and nothing at all leaves a
script's user staring at minutes of silence; so when stderr is not a terminal, progress comes
as whole lines, the first after 30 s (short jobs print nothing). ``OCRKIT_PROGRESS=0`` turns
both off, ``OCRKIT_PROGRESS=1`` forces the live bar.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm
from tqdm.std import tqdm as plain_tqdm

T = TypeVar("T")

LINE_INTERVAL_S = 30.0


def progress_mode() -> str:
    """``"bar"``, ``"lines"`` or ``"off"``: from ``OCRKIT_PROGRESS``, else from stderr."""
    setting = os.environ.get("OCRKIT_PROGRESS")
    if setting == "0":
        return "off"
    if setting == "1" or sys.stderr.isatty():
        return "bar"
    return "lines"


def progress_enabled() -> bool:
    """True when progress shows in any form."""
    return progress_mode() != "off"


class LineProgress(plain_tqdm):
    """tqdm that writes its status as one whole line at most every ``mininterval`` seconds and
    never draws, redraws or clears a bar (for logs and pipes)."""

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if msg is not None:  # '' clears the bar on close: nothing to clear here
            return False
        self.fp.write(self.__str__() + "\n")
        self.fp.flush()
        return True

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
        """Shown with the next line, not as a line of its own (training sets it every log)."""
        super().set_postfix(ordered_dict, refresh=False, **kwargs)


def progress(iterable: Iterable[T] | None = None, **kwargs: Any) -> tqdm:
    """``tqdm`` with ocrkit defaults: a bar, status lines or nothing (:func:`progress_mode`);
    an explicit ``disable`` wins."""
    mode = progress_mode()
    kwargs.setdefault("disable", mode == "off")
    kwargs.setdefault("leave", False)
    if mode == "lines":
        interval = kwargs.pop("line_interval", LINE_INTERVAL_S)
        kwargs.update(mininterval=interval, maxinterval=interval, delay=interval, leave=False)
        kwargs.setdefault("ascii", True)
        kwargs.setdefault("ncols", 80)
        return LineProgress(iterable, **kwargs)
    kwargs.pop("line_interval", None)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)
