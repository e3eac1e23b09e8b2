"""Progress: a live bar on a terminal, whole status lines in logs and pipes, or nothing."""

from __future__ import annotations

import io

import pytest

from ocrkit.utils import progress as progress_module
from ocrkit.utils.progress import LineProgress, progress, progress_mode


@pytest.mark.parametrize(
    ("setting", "tty", "mode"),
    [
        (None, True, "bar"),
        (None, False, "lines"),
        ("0", True, "off"),
        ("0", False, "off"),
        ("1", False, "bar"),
    ],
)
def test_mode_follows_the_setting_then_the_terminal(monkeypatch, setting, tty, mode) -> None:
    if setting is None:
        monkeypatch.delenv("OCRKIT_PROGRESS", raising=False)
    else:
        monkeypatch.setenv("OCRKIT_PROGRESS", setting)
    monkeypatch.setattr(progress_module.sys.stderr, "isatty", lambda: tty, raising=False)
    assert progress_mode() == mode


def test_lines_mode_writes_whole_lines_and_never_clears(monkeypatch) -> None:
    monkeypatch.delenv("OCRKIT_PROGRESS", raising=False)
    monkeypatch.setattr(progress_module.sys.stderr, "isatty", lambda: False, raising=False)
    out = io.StringIO()
    bar = progress(total=4, desc="eval x", unit="img", file=out, line_interval=0)
    assert isinstance(bar, LineProgress)
    for _ in range(4):
        bar.update(1)
        bar.set_postfix(loss="0.1")  # no line of its own: it rides on the next update's
    bar.close()
    lines = out.getvalue().split("\n")
    assert "\r" not in out.getvalue() and lines[-1] == ""  # every write is one whole line
    assert lines[0].startswith("eval x:   0%|") and "0/4" in lines[0]
    assert lines[-2].startswith("eval x: 100%|###") and "| 4/4 [" in lines[-2]
    assert len(lines[-2]) <= 80 and len(lines) == 6  # 0/4 .. 4/4, then the final newline
    assert lines[-2].endswith("loss=0.1]")


def test_lines_mode_is_silent_for_short_jobs(monkeypatch) -> None:
    monkeypatch.delenv("OCRKIT_PROGRESS", raising=False)
    monkeypatch.setattr(progress_module.sys.stderr, "isatty", lambda: False, raising=False)
    out = io.StringIO()
    for _ in progress(range(1000), desc="quick", file=out):  # the default 30 s interval
        pass
    assert out.getvalue() == ""


def test_off_writes_nothing(monkeypatch) -> None:
    monkeypatch.setenv("OCRKIT_PROGRESS", "0")
    out = io.StringIO()
    for _ in progress(range(10), desc="x", file=out, line_interval=0):
        pass
    assert out.getvalue() == ""
