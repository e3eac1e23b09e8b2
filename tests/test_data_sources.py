"""LMDB, label folders, PaddleOCR lists, scene crops, open_dataset, filtering and corrupt images."""

from __future__ import annotations

import json
import logging

import cv2
import lmdb
import numpy as np
import pytest
from torch.utils.data import DataLoader

from ocrkit.data import (
    ConcatStrDataset,
    StrTransform,
    SubsetStrDataset,
    collate_samples,
    crop_quad,
    detect_type,
    encode_image,
    open_dataset,
    select_indices,
    write_lmdb,
)


def _image(value: int, h: int = 8, w: int = 16) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


def _png(value: int, h: int = 8, w: int = 16) -> bytes:
    return encode_image(_image(value, h, w), ".png")


@pytest.fixture
def label_folder(tmp_path):
    """A labels.tsv folder: 3 good images, 1 truncated JPEG, 1 missing file."""
    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    for i, value in enumerate([10, 20, 30], 1):
        (root / "images" / f"{i}.png").write_bytes(_png(value))
    jpeg = encode_image(np.random.default_rng(0).integers(0, 255, (20, 40, 3), np.uint8))
    (root / "images" / "4.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    lines = [
        "images/1.png\tHello",
        "images/2.png\tab cd",
        "images/3.png\tZ",
        "images/4.jpg\tbroken",
        "images/5.png\tmissing",
        "",
    ]
    (root / "labels.tsv").write_text("\n".join(lines), encoding="utf-8")
    return root


def test_lmdb_round_trip_bytes_and_labels_exact(tmp_path):
    images = [_png(v) for v in (1, 2, 3)]
    images.append(encode_image(_image(200), ".jpg"))
    labels = ["one", "Twö", None, "four four"]
    out = tmp_path / "db"
    assert write_lmdb(out, zip(images, labels)) == 4
    env = lmdb.open(str(out), readonly=True, lock=False)
    with env.begin() as txn:
        assert txn.get(b"num-samples") == b"4"
        assert txn.get(b"image-000000001") == images[0]  # 1-based keys
        assert txn.get(b"label-000000002") == "Twö".encode()
        assert txn.get(b"label-000000003") is None
    env.close()
    ds = open_dataset(out)  # no protocol: the unlabeled entry is dropped
    assert len(ds) == 3 and ds.dropped == {"unlabeled": 1}
    assert [ds[i].label for i in range(3)] == ["one", "Twö", "four four"]
    assert [ds._load(ds.raw_index(i))[0] for i in range(3)] == [images[0], images[1], images[3]]
    assert ds[0].key == "1" and ds[2].key == "4"
    assert np.array_equal(ds[1].image, _image(2))
    unlabeled = open_dataset(out, unlabeled=True)
    assert len(unlabeled) == 4 and {unlabeled[i].label for i in range(4)} == {None}


def test_write_lmdb_encodes_arrays_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "db"
    write_lmdb(out, [(_image(77), "x")], image_format=".png")
    assert np.array_equal(open_dataset(out)[0].image, _image(77))
    with pytest.raises(FileExistsError, match="overwrite"):
        write_lmdb(out, [(_image(1), "y")])
    write_lmdb(out, [(_image(5), "y"), (_image(6), "z")], overwrite=True, image_format=".png")
    assert open_dataset(out).labels == ["y", "z"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_write_lmdb_grows_a_small_map(tmp_path):
    rng = np.random.default_rng(1)
    noise = [encode_image(rng.integers(0, 256, (64, 256, 3), np.uint8), ".png") for _ in range(8)]
    n = write_lmdb(
        tmp_path / "db",
        [(b, str(i)) for i, b in enumerate(noise)],
        map_size=1 << 16,
        commit_every=2,
    )
    ds = open_dataset(tmp_path / "db")
    assert n == 8 and ds._load(7)[0] == noise[7]


@pytest.mark.shared_data
def test_reads_toy_lmdb_written_by_another_toolkit(shared_data):
    ds = open_dataset(shared_data / "lmdb_toy", protocol="parseq36")
    assert len(ds) == 10
    assert ds[0].label == "grand" and ds[4].label == "03092009"
    assert all(ds[i].image.ndim == 3 and ds[i].image.shape[2] == 3 for i in range(10))


def test_parseq36_filtering_counts(tmp_path):
    labels = [
        "Hello",
        "a" * 25 + "!",  # 26 characters: too long *before* charset adaptation drops "!"
        "abcdefghijklmnopqrstuvwx y",  # 26 with a space, 25 after whitespace removal: kept
        "!!!",  # empty after adaptation
        "Café",  # NFKD folding -> "cafe"
    ]
    write_lmdb(tmp_path / "db", [(_png(i), t) for i, t in enumerate(labels)])
    ds = open_dataset(tmp_path / "db", protocol="parseq36")
    assert ds.labels == ["hello", "abcdefghijklmnopqrstuvwxy", "cafe"]
    assert ds.dropped == {"too_long": 1, "empty_after_normalization": 1}
    report = ds.filter_report()
    assert report["total"] == 5 and report["kept"] == 3 and report["protocol"] == "parseq36"


def test_lmdb_garbage_is_skipped_and_loader_still_batches(tmp_path, caplog):
    samples = [(_png(10), "ok"), (b"\x00garbage", "bad"), (_png(30), "fine")]
    write_lmdb(tmp_path / "db", samples)
    ds = open_dataset(tmp_path / "db", transform=StrTransform((32, 128)))
    with caplog.at_level(logging.WARNING, logger="ocrkit.data.base"):
        assert ds[1] is None and ds[1] is None
    assert ds.skipped == 2 and ds.skip_reasons == {"corrupt_image": 2}
    assert len([r for r in caplog.records if "skipping" in r.message]) == 1  # warned once per key
    batches = list(DataLoader(ds, batch_size=2, collate_fn=collate_samples))
    assert [b["images"].shape[0] for b in batches] == [1, 1]
    assert sum(b["num_skipped"] for b in batches) == 1
    assert [label for b in batches for label in b["labels"]] == ["ok", "fine"]


def test_lmdb_dataset_works_in_worker_processes(tmp_path):
    write_lmdb(tmp_path / "db", [(_png(i), f"w{i}") for i in range(6)])
    ds = open_dataset(tmp_path / "db", transform=StrTransform((8, 16)))
    ds[0]  # opens the environment in the parent; workers must open their own
    loader = DataLoader(ds, batch_size=3, num_workers=2, collate_fn=collate_samples)
    labels = sorted(label for b in loader for label in b["labels"])
    assert labels == [f"w{i}" for i in range(6)]


def test_label_folder_skips_truncated_and_missing(label_folder, caplog):
    assert detect_type(label_folder) == "folder"
    ds = open_dataset(label_folder, protocol="parseq36")
    assert ds.labels == ["hello", "abcd", "z", "broken", "missing"]
    assert ds[0].key == "images/1.png" and np.array_equal(ds[0].image, _image(10))
    with caplog.at_level(logging.WARNING):
        assert ds[3] is None and ds[4] is None
    assert ds.skip_reasons == {"corrupt_image": 1, "unreadable_file": 1}
    assert "images/4.jpg" in caplog.text
    batch = collate_samples([ds[i] for i in range(len(ds))])
    assert batch["labels"] == ["hello", "abcd", "z"] and batch["num_skipped"] == 2


def test_paddle_list_with_root(tmp_path, label_folder):
    list_file = tmp_path / "train_list.txt"
    list_file.write_text("images/2.png\tab\nimages/3.png\nimages/1.png\tx y\n", encoding="utf-8")
    ds = open_dataset(list_file, root=label_folder)
    assert ds.labels == ["ab", "x y"] and ds.dropped == {"unlabeled": 1}
    assert np.array_equal(ds[1].image, _image(10))
    same = open_dataset({"type": "paddle", "path": list_file, "root": label_folder})
    assert same.labels == ds.labels


def _scene(tmp_path):
    scene = np.full((100, 120, 3), 255, np.uint8)
    scene[20:40, 10:60] = np.arange(50, dtype=np.uint8)[None, :, None] * 4  # horizontal ramp
    scene[10:35, 80:100] = 0  # vertical word, top half black
    scene[35:60, 80:100] = 200  # bottom half gray
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "s.png"), scene[:, :, ::-1])
    instances = [
        {"text": "Ramp", "points": [[10, 20], [60, 20], [60, 40], [10, 40]], "ignore": False},
        {"text": "###", "points": [[0, 0], [5, 0], [5, 5], [0, 5]], "ignore": True},
        {"text": "Down", "points": [[100, 10], [100, 60], [80, 60], [80, 10]], "ignore": False},
        {"text": "skip", "points": [[1, 1], [9, 1], [9, 9], [1, 9]], "ignore": True},
    ]
    record = {"image": "images/s.png", "instances": instances}
    (tmp_path / "annotations.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    return scene


def test_scene_crops_rectify_known_quads(tmp_path):
    scene = _scene(tmp_path)
    ds = open_dataset(tmp_path / "annotations.jsonl")
    assert len(ds) == 2 and ds.num_ignored == 2 and ds.labels == ["Ramp", "Down"]
    ramp = ds[0]
    assert ramp.key == "images/s.png#0"
    assert np.array_equal(ramp.image, scene[20:40, 10:60])  # axis-aligned: exact slice
    down = ds[1].image  # read top to bottom: rectified to 50 wide, 20 high
    assert down.shape == (20, 50, 3)
    assert down[:, :25].max() == 0 and down[:, 25:].min() == 200
    assert np.array_equal(down, np.rot90(scene[10:60, 80:100]))
    assert open_dataset(tmp_path).labels == ["Ramp", "Down"]  # folder with annotations.jsonl


def test_missing_scene_skips_each_crop_and_warns_once(tmp_path, caplog):
    _scene(tmp_path)
    (tmp_path / "images" / "s.png").unlink()
    ds = open_dataset(tmp_path / "annotations.jsonl")
    with caplog.at_level(logging.WARNING, logger="ocrkit.data.base"):
        assert ds[0] is None and ds[1] is None and ds[0] is None
    assert ds.skipped == 3 and ds.skip_reasons == {"unreadable_file": 3}
    warnings = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    assert len(warnings) == 1 and "images/s.png#0" in warnings[0]
    assert "other samples of images/s.png skipped silently" in warnings[0]


def test_crop_quad_rejects_bad_points():
    with pytest.raises(ValueError, match="4"):
        crop_quad(np.zeros((5, 5, 3), np.uint8), [[0, 0], [1, 1]])
    with pytest.raises(ValueError, match="degenerate"):
        crop_quad(np.zeros((5, 5, 3), np.uint8), [[1, 1]] * 4)


@pytest.mark.shared_data
def test_ic15_scene_crops(shared_data):
    ds = open_dataset(shared_data / "ic15_train" / "annotations.jsonl", protocol="parseq36")
    assert len(ds) + sum(ds.dropped.values()) == 4468  # legible words in the README
    first = ds[0]
    assert first.label == "ave" and first.image.shape[2] == 3


def test_open_dataset_lists_concat_and_subsets(tmp_path, label_folder):
    write_lmdb(tmp_path / "db", [(_png(i), f"w{i}") for i in range(3)])
    ds = open_dataset([tmp_path / "db", label_folder], protocol="raw")
    assert isinstance(ds, ConcatStrDataset) and len(ds) == 8
    assert ds[3].label == "Hello" and ds[-1] is None and ds.skipped == 1
    assert ds.filter_report()["total"] == 8
    wide = select_indices(ds, lambda s: s.label.startswith("w"))
    assert wide == [0, 1, 2]
    sub = SubsetStrDataset(ds, wide, name="w")
    assert len(sub) == 3 and sub.labels == ["w0", "w1", "w2"] and sub[2].label == "w2"


def test_open_dataset_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="cannot tell"):
        open_dataset(tmp_path / "empty")
    with pytest.raises(KeyError, match="unknown dataset source"):
        open_dataset({"type": "lmbd", "path": tmp_path})
    with pytest.raises(ValueError, match="'type' and 'path'"):
        open_dataset({"path": tmp_path})
