"""A killed run leaves nothing behind: temp folders, LMDB temp dirs, duplicated metric lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from ocrkit.data.lmdb import write_lmdb
from ocrkit.train.checkpoint import clean_leftovers
from ocrkit.train.logger import truncate_metrics


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_clean_leftovers_removes_dead_writers_temp_folders_only(tmp_path: Path) -> None:
    dead = dead_pid()
    (tmp_path / f".tmp-best-{dead}").mkdir()
    (tmp_path / f".tmp-best-{dead}" / "model.safetensors").write_bytes(b"x")
    (tmp_path / "checkpoints" / f".tmp-step-00000004-{dead}").mkdir(parents=True)
    live = tmp_path / f".tmp-final-{os.getpid()}"  # a writer that is still running
    live.mkdir()
    # killed between the two renames: best/ moved aside, the new one not yet in place
    (tmp_path / f".old-best-{dead}").mkdir()
    (tmp_path / f".old-best-{dead}" / "config.json").write_text("{}")
    (tmp_path / "final").mkdir()
    (tmp_path / f".old-final-{dead}").mkdir()  # final/ exists: the old copy is garbage
    clean_leftovers(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [live.name, "best", "checkpoints", "final"]
    assert (tmp_path / "best" / "config.json").read_text() == "{}"
    assert list((tmp_path / "checkpoints").iterdir()) == []


def test_metrics_log_is_cut_to_the_resumed_step(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"step": s, "train/loss": 1.0 / s}) for s in (2, 4, 4, 6, 8)]
    path.write_text("\n".join(lines) + '\n{"step": 10, "tra')  # torn last line of a kill
    truncate_metrics(path, 4)
    assert path.read_text().splitlines() == lines[:3]
    truncate_metrics(path, 0)
    assert path.read_text() == ""


def test_write_lmdb_removes_a_killed_writers_temp_folder(tmp_path: Path) -> None:
    dead = dead_pid()
    stale = tmp_path / f".out.tmp-{dead}"
    stale.mkdir()
    (stale / "data.mdb").write_bytes(b"\0" * 1024)
    image = np.zeros((8, 16, 3), np.uint8)
    assert write_lmdb(tmp_path / "out", [(image, "a")], map_size=1 << 20) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
