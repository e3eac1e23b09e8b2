"""Held-apart splits, label categories and the bench/training overlap guard (tiny fixtures)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from ocrkit.tabench.builder import build_bench
from ocrkit.tabench.preset import SourceSpec, gather
from ocrkit.tabench.sources import read_jsonl
from ocrkit.tabench.split import Split, load_split, make_split, overlaps


def _source(root, n, label=None):
    """``n`` distinct images, each with two regions: ``a<i>`` (label) and ``the``."""
    (root / "images").mkdir(parents=True)
    lines = []
    for i in range(n):
        Image.new("RGB", (60, 30), (i * 20, 0, 0)).save(root / "images" / f"{i}.png")
        inst = [
            {"text": f"a{i}", "box": [0, 0, 20, 10], **({"label": label} if label else {})},
            {"text": "the", "box": [30, 0, 50, 10], "label": "paragraph"},
        ]
        lines.append(json.dumps({"image": f"images/{i}.png", "instances": inst}))
    (root / "annotations.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_label_categories_split_r2t_and_keep_t2r_groups_whole(tmp_path):
    root = _source(tmp_path / "docs", 5, label="title")
    images = read_jsonl(root, "DocText", "docs", {"title": "DocTitle"})
    queries = build_bench(images, tmp_path / "b.jsonl")
    cats = {(q.task, q.text): q.category for q in queries}
    assert cats[("r2t", "a0")] == "DocTitle" and cats[("r2t", "the")] == "DocText"
    # every T2R group has one member category here: a<i> -> DocTitle, "the" -> DocText
    assert cats[("t2r", "a3")] == "DocTitle" and cats[("t2r", "the")] == "DocText"
    n = {c: sum(q.category == c for q in queries) for c in ("DocTitle", "DocText")}
    assert n == {"DocTitle": 10, "DocText": 10}  # 5 + 5 each; "the" T2R: 5 (one per image)


def test_mixed_t2r_group_takes_the_image_category(tmp_path):
    from ocrkit.tabench.builder import image_candidates

    root = tmp_path / "d"
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (60, 30)).save(root / "images" / "0.png")
    inst = [
        {"text": "x", "box": [0, 0, 9, 9], "label": "title"},
        {"text": "x", "box": [20, 0, 29, 9], "label": "caption"},
    ]
    (root / "annotations.jsonl").write_text(
        json.dumps({"image": "images/0.png", "instances": inst})
    )
    (img,) = read_jsonl(root, "Doc", "d", {"title": "T", "caption": "C"})
    c = image_candidates(img, tmp_path)
    assert [q.category for q in c.r2t] == ["T", "C"]
    assert [(q.category, q.boxes) for q in c.t2r] == [("Doc", [[0, 0, 9, 9], [20, 0, 29, 9]])]


def test_make_split_holds_copies_together_and_gather_keeps_only_held_out(tmp_path):
    root = _source(tmp_path / "src", 6)
    shutil.copy(root / "images" / "2.png", root / "images" / "9.png")  # a byte-identical copy
    sources = make_split({"src": root}, {"src": 3}, seed=42)
    held = set(sources["src"]["held_out"])
    assert len(held) in (3, 4) and (("images/2.png" in held) == ("images/9.png" in held))
    split = Split("t", {"src": sources["src"]["held_out"]})
    # the annotation file lists 0..5 only; 9.png (if not held) is a training image by hash
    bench, train = gather([SourceSpec("scene", str(root), "S")], split)
    assert {i.path.name for i in bench} == {n.split("/")[1] for n in held} - {"9.png"}
    assert len(bench) + len(train) == 6


def test_gather_refuses_overlap_by_hash_and_changed_bytes(tmp_path):
    root = _source(tmp_path / "src", 3)
    split = Split("t", {"src": make_split({"src": root}, {"src": None})["src"]["held_out"]})
    train = tmp_path / "train"
    train.mkdir()
    shutil.copy(root / "images" / "1.png", train / "renamed.png")
    with pytest.raises(ValueError, match="also training images.*renamed.png"):
        gather([SourceSpec("scene", str(root), "S")], split, [train])
    bench, _ = gather([SourceSpec("scene", str(root), "S")], split, [train], allow_overlap=True)
    assert len(bench) == 3
    assert overlaps([root / "images" / "0.png"], [root / "images" / "0.png"])[0].endswith(
        "(same path)"
    )
    Image.new("RGB", (60, 30), "blue").save(root / "images" / "0.png")
    with pytest.raises(ValueError, match="bytes differ"):
        gather([SourceSpec("scene", str(root), "S")], split)
    other = _source(tmp_path / "other", 1)
    with pytest.raises(ValueError, match="names no source 'other'"):
        gather([SourceSpec("scene", str(other), "S")], split)


def test_committed_tabench_local_split():
    split = load_split("tabench-local")
    n = {s: len(v) for s, v in split.sources.items()}
    assert n == {"ic15_train": 100, "sroie_train": 41, "docbank_sample": 8, "funsd_test": 50}
    assert split.path_key("/any/root/ic15_train/" + next(iter(split.sources["ic15_train"])))
    assert split.path_key("/any/root/ic15_train/images/not_there.jpg") is None
    assert all(len(h) == 64 for v in split.sources.values() for h in v.values())


def test_anchoring_builder_leaves_out_held_apart_images(tmp_path, caplog):
    from ocrkit.anchoring.generate import build_instances

    root = _source(tmp_path / "src", 3)
    held = {
        "images/1.png": make_split({"src": root}, {"src": None})["src"]["held_out"]["images/1.png"]
    }
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"name": "t", "sources": {"src": {"held_out": held}}}))
    # a renamed copy of the held-apart image is caught by its hash
    shutil.copy(root / "images" / "1.png", root / "images" / "copy.png")
    lines = (root / "annotations.jsonl").read_text().splitlines()
    lines.append(lines[1].replace("images/1.png", "images/copy.png"))
    (root / "annotations.jsonl").write_text("\n".join(lines) + "\n")
    spec = {"type": "icdar", "path": str(root), "per_image": None, "holdout": str(split)}
    spec["prior"] = "gt"
    images = {Path(i.image).name for i in build_instances(spec)}
    assert images == {"0.png", "2.png"}


@pytest.mark.shared_data
def test_tabench_local_builds_in_one_command(shared_data, tmp_path, capsys):
    from ocrkit.cli import main

    out = tmp_path / "tabench-local.jsonl"
    argv = ["tabench", "build", "--preset", "tabench-local", "--data", str(shared_data)]
    assert main([*argv, "--out", str(out)]) == 0
    meta = json.loads((tmp_path / "tabench-local.meta.json").read_text())
    assert meta["t2r_shape"] == "box" and meta["split"] == "tabench-local"
    assert meta["counts"]["SceneText/r2t"] == meta["counts"]["SceneText/t2r"] == 50
    assert sum(meta["counts"].values()) == 490
    split = load_split("tabench-local")
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert all(split.path_key(tmp_path / q["image"]) for q in lines)
    assert all(
        len(b) == 4 and not isinstance(b[0], list) for q in lines for b in q.get("boxes", [])
    )
