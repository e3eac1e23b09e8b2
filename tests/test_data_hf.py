"""Hugging Face ``datasets`` sources: save_to_disk folders, imagefolder, Arrow, streaming."""

from __future__ import annotations

import json

import numpy as np
import pytest
from torch.utils.data import DataLoader

from ocrkit.data import HFStreamingDataset, collate_samples, encode_image, open_dataset

datasets = pytest.importorskip("datasets")


def _png(value: int) -> bytes:
    return encode_image(np.full((6, 10, 3), value, np.uint8), ".png")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A save_to_disk dataset: 4 images (one corrupt) with Image feature, labels in "gt"."""
    root = tmp_path_factory.mktemp("hf")
    features = datasets.Features({"image": datasets.Image(), "gt": datasets.Value("string")})
    images = [
        {"bytes": _png(10), "path": None},
        {"bytes": b"garbage", "path": None},
        {"bytes": _png(30), "path": None},
        {"bytes": _png(40), "path": None},
    ]
    ds = datasets.Dataset.from_dict(
        {"image": images, "gt": ["Alpha", "Beta", "!!", "Delta"]}, features=features
    )
    ds.save_to_disk(str(root / "saved"))
    return root / "saved"


def test_saved_dataset_labels_images_and_corrupt(saved):
    ds = open_dataset(f"hf:{saved}", protocol="parseq36", text_column="gt")
    assert ds.labels == ["alpha", "beta", "delta"]
    assert ds.dropped == {"empty_after_normalization": 1}
    assert np.array_equal(ds[0].image, np.full((6, 10, 3), 10, np.uint8))
    assert ds[1] is None and ds.skipped == 1
    assert ds[2].key == "3"  # the raw row index
    batches = list(DataLoader(ds, batch_size=4, collate_fn=collate_samples))
    assert batches[0]["labels"] == ["alpha", "delta"] and batches[0]["num_skipped"] == 1


def test_column_errors_are_clear(saved):
    with pytest.raises(ValueError, match="cannot guess the text column"):
        open_dataset(f"hf:{saved}")
    with pytest.raises(ValueError, match="no image column 'img'"):
        open_dataset(f"hf:{saved}", image_column="img", text_column="gt")
    assert len(open_dataset(f"hf:{saved}", unlabeled=True)) == 4


def test_arrow_file(saved):
    arrow = next(saved.glob("*.arrow"))
    ds = open_dataset(arrow, text_column="gt")
    assert ds.labels == ["Alpha", "Beta", "!!", "Delta"]


def test_imagefolder_with_metadata(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rows = []
    for i, word in enumerate(["cat", "dog"]):
        (folder / f"{i}.png").write_bytes(_png(100 + i))
        rows.append(json.dumps({"file_name": f"{i}.png", "text": word}))
    (folder / "metadata.jsonl").write_text("\n".join(rows) + "\n")
    ds = open_dataset(folder, hf_options={"cache_dir": str(tmp_path / "cache")})
    assert sorted(ds.labels) == ["cat", "dog"]
    sample = ds[ds.labels.index("dog")]
    assert sample.image[0, 0].tolist() == [101, 101, 101]


def test_streaming_filters_on_the_fly(saved):
    ds = open_dataset(f"hf:{saved}", text_column="gt", streaming=True, protocol="parseq36")
    assert isinstance(ds, HFStreamingDataset)
    items = list(ds)
    assert [s.label for s in items if s is not None] == ["alpha", "delta"]
    assert items.count(None) == 1 and ds.dropped == {"empty_after_normalization": 1}


def test_hub_name_offline_gives_a_clear_error(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ValueError, match="save_to_disk"):
        open_dataset("hf:nobody/no-such-dataset-ocrkit:test")
