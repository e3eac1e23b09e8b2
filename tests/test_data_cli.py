"""``ocrkit data convert`` and ``ocrkit data inspect`` on small fixtures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ocrkit.cli import main
from ocrkit.data import encode_image, open_dataset


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    for i in range(1, 4):
        (root / "images" / f"{i}.png").write_bytes(
            encode_image(np.full((8, 8 * i, 3), 50 * i, np.uint8), ".png")
        )
    (root / "images" / "4.png").write_bytes(b"corrupt")
    lines = [
        "images/1.png\tOne",
        "images/2.png\t" + "x" * 30,
        "images/3.png\tThree",
        "images/4.png\tfour",
    ]
    (root / "labels.tsv").write_text("\n".join(lines) + "\n")
    return root


def test_convert_keeps_original_labels_and_bytes(folder, tmp_path, capsys):
    out = tmp_path / "db"
    assert main(["data", "convert", str(folder), "--out", str(out), "--protocol", "parseq36"]) == 0
    printed = capsys.readouterr().out
    assert "kept 3" in printed and "too_long=1" in printed and "corrupt_image=1" in printed
    assert "wrote 2 samples" in printed
    ds = open_dataset(out)
    assert ds.labels == ["One", "Three"]
    assert ds._load(1)[0] == (folder / "images" / "3.png").read_bytes()
    assert main(["data", "convert", str(folder), "--out", str(out)]) == 1  # exists: refused
    assert "--overwrite" in capsys.readouterr().err
    main(
        [
            "data",
            "convert",
            str(folder),
            "--out",
            str(out),
            "--overwrite",
            "--protocol",
            "parseq36",
            "--normalize-labels",
        ]
    )
    assert open_dataset(out).labels == ["one", "three"]


def test_inspect_prints_stats_and_writes_grid(folder, tmp_path, capsys):
    grid = tmp_path / "grid.png"
    args = ["data", "inspect", str(folder), "--grid", str(grid), "--n", "8", "--json"]
    assert main(args) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["samples"] == 4 and stats["images_measured"] == 3
    assert stats["label_lengths"] == {"3": 1, "30": 1, "5": 1, "4": 1}
    assert stats["width"]["min"] == 8 and stats["width"]["max"] == 24
    assert stats["grid"]["samples"] == 3 and grid.read_bytes()[:4] == b"\x89PNG"
    assert main(["data", "inspect", str(folder), "--protocol", "parseq36"]) == 0
    assert "charset 36:" in capsys.readouterr().out


def test_missing_source_is_a_one_line_error(tmp_path, capsys):
    assert main(["data", "inspect", str(tmp_path / "nothing")]) == 1
    assert "does not exist" in capsys.readouterr().err
