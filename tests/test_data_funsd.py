"""FUNSD word crops as STR samples: the ``funsd`` source and its detection."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ocrkit.data import open_dataset
from ocrkit.data.sources import detect_type
from ocrkit.utils.paths import shared_data_dir


def funsd_folder(root: Path) -> tuple[Path, np.ndarray]:
    """A one-form FUNSD folder: two words, one empty word, one zero-width box."""
    rng = np.random.default_rng(0)
    page = rng.integers(0, 256, (60, 120, 3), np.uint8)
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    cv2.imwrite(str(root / "images" / "form1.png"), page[..., ::-1])  # RGB -> BGR on disk
    form = {
        "form": [
            {
                "words": [
                    {"box": [10, 5, 40, 25], "text": "Date:"},
                    {"box": [50, 5, 50, 25], "text": "x"},
                ]
            },
            {
                "words": [
                    {"box": [0, 0, 9, 9], "text": " "},
                    {"box": [60, 30, 115, 58], "text": "TOTAL"},
                ]
            },
        ]
    }
    (root / "annotations" / "form1.json").write_text(json.dumps(form), encoding="utf-8")
    return root, page


def test_funsd_words_are_cut_as_their_boxes(tmp_path):
    root, page = funsd_folder(tmp_path / "funsd")
    assert detect_type(root) == "funsd"
    ds = open_dataset(root, protocol="full94")
    assert len(ds) == 2 and ds.num_ignored == 1 and ds.dropped["degenerate_quad"] == 1
    first, second = ds[0], ds[1]
    # key: the word's index among all words of the file (the empty word and the degenerate
    # box keep their indices)
    assert (first.key, first.label) == ("images/form1.png#0", "Date:")
    assert (second.key, second.label) == ("images/form1.png#3", "TOTAL")
    np.testing.assert_array_equal(first.image, page[5:25, 10:40])
    np.testing.assert_array_equal(second.image, page[30:58, 60:115])


def test_a_bad_funsd_file_names_itself(tmp_path):
    root, _ = funsd_folder(tmp_path / "funsd")
    (root / "annotations" / "form2.json").write_text('{"form": [{"words": [{"text": "a"}]}]}')
    with pytest.raises(ValueError, match="form2.json: bad FUNSD annotation"):
        open_dataset({"type": "funsd", "path": str(root)})


def test_funsd_train_words():
    data = shared_data_dir()
    if data is None or not (data / "funsd_train").is_dir():
        pytest.skip("../shared/data/funsd_train is not here")
    ds = open_dataset(data / "funsd_train", protocol="full94")
    assert len(ds) == 21761 and ds.num_ignored == 624  # words with text / empty words
    assert ds[0].label == "R&D" and ds[0].image.shape == (84, 84, 3)
