"""Corrupt LMDBs end with one clear error naming the file, never a signal (issue 14, item 2)."""

from __future__ import annotations

import os
import subprocess
import sys

import lmdb
import numpy as np
import pytest

from ocrkit.data.lmdb import CorruptLmdbError, LmdbDataset, write_lmdb


@pytest.fixture()
def good(tmp_path):
    rng = np.random.default_rng(0)
    samples = [(rng.integers(0, 255, (16, 40, 3), dtype=np.uint8), f"w{i}") for i in range(40)]
    write_lmdb(tmp_path / "good", samples, image_format=".png")
    return tmp_path / "good"


def _copy(src, dst):
    dst.mkdir()
    (dst / "data.mdb").write_bytes((src / "data.mdb").read_bytes())
    return dst


def test_truncated_lmdb_is_an_error_not_sigbus(good, tmp_path):
    bad = _copy(good, tmp_path / "trunc")
    os.truncate(bad / "data.mdb", (bad / "data.mdb").stat().st_size // 2)
    # in a child process: before the fix the read died with SIGBUS (return code -7)
    code = f"from ocrkit.data.lmdb import LmdbDataset\nLmdbDataset({str(bad)!r})"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "CorruptLmdbError" in proc.stderr and "truncated" in proc.stderr


def test_empty_lmdb_names_the_file(good, tmp_path):
    bad = tmp_path / "empty"
    bad.mkdir()
    (bad / "data.mdb").write_bytes(b"")
    with pytest.raises(CorruptLmdbError, match="empty file"):
        LmdbDataset(bad)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"-5", "not a non-negative integer"),
        (b"abc", "not a non-negative"),
        (b"30000000", "holds only"),
    ],
)
def test_num_samples_is_checked_against_the_entries(good, tmp_path, value, message):
    bad = _copy(good, tmp_path / "n")
    env = lmdb.open(str(bad))
    with env.begin(write=True) as txn:
        txn.put(b"num-samples", value)
    env.close()
    with pytest.raises(CorruptLmdbError, match=message):
        LmdbDataset(bad)


def test_good_lmdb_still_reads(good):
    ds = LmdbDataset(good)
    assert len(ds) == 40 and ds.labels[:2] == ["w0", "w1"] and ds.get(3).image.shape == (16, 40, 3)


@pytest.mark.parametrize("content", [b"hello world\n" * 5000, bytes(range(256)) * 800])
def test_non_lmdb_data_mdb_names_the_file(tmp_path, content):
    bad = tmp_path / "junk"
    bad.mkdir()
    (bad / "data.mdb").write_bytes(content)
    with pytest.raises(CorruptLmdbError, match=r"junk/data.mdb: cannot open as LMDB"):
        LmdbDataset(bad)


def test_damaged_pages_are_one_error_not_a_traceback(good, tmp_path):
    bad = _copy(good, tmp_path / "pages")
    data = bytearray((bad / "data.mdb").read_bytes())
    data[8192:-4096] = bytes(len(data) - 8192 - 4096)  # every page past the two meta pages
    (bad / "data.mdb").write_bytes(bytes(data))
    with pytest.raises(CorruptLmdbError, match=r"pages/data.mdb: corrupt \(MDB_"):
        LmdbDataset(bad)


def test_cli_reports_a_truncated_lmdb_in_one_line(good, tmp_path, capsys):
    from ocrkit.cli import main

    bad = _copy(good, tmp_path / "trunc")
    os.truncate(bad / "data.mdb", 60000)
    assert main(["data", "inspect", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"ocrkit data: error: {bad / 'data.mdb'}: truncated, 60000 bytes on disk but the "
        f"database uses {(good / 'data.mdb').stat().st_size} (copy it again)"
    ]


def _label_folder(root, lines: bytes):
    import cv2

    (root / "images").mkdir(parents=True)
    for i in range(1, 4):
        cv2.imwrite(str(root / "images" / f"{i}.png"), np.full((16, 40, 3), 9 * i, np.uint8))
    (root / "labels.tsv").write_bytes(lines)
    return root


def test_one_bad_label_line_does_not_reject_the_folder(tmp_path, caplog):
    from ocrkit.data.folder import folder_dataset

    lines = b"images/1.png\tone\nimages/2.png\tcaf\xe9\nimages/3.png\tthree\n"
    ds = folder_dataset(_label_folder(tmp_path / "set", lines))
    assert ds.labels == ["one", "caf\ufffd", "three"] and ds.bad_labels == 1
    assert ds.get(2).image.shape == (16, 40, 3)
    assert "1 label line(s) not valid UTF-8" in caplog.text and "labels.tsv:2" in caplog.text


@pytest.mark.parametrize("path", ["../../etc/hostname", "/etc/hostname", "images/../../x.png"])
def test_label_paths_leaving_the_set_folder_are_refused(tmp_path, path):
    from ocrkit.data.folder import folder_dataset

    lines = f"images/1.png\tone\n{path}\tboom\n".encode()
    root = _label_folder(tmp_path / "set", lines)
    with pytest.raises(ValueError, match=r"labels.tsv:2: image path .* leaves "):
        folder_dataset(root)
