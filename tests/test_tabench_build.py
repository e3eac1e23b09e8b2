"""Bench schema, loader (field mapping, rel-1000 coordinates) and the S1 builder."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from ocrkit.tabench.builder import build_bench, per_direction
from ocrkit.tabench.schema import load_bench, parse_field_map, save_bench
from ocrkit.tabench.sources import read_jsonl


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def test_loader_maps_fields_and_rel1000(tmp_path):
    records = [
        {
            "qid": "a",
            "img": "i.png",
            "w": 200,
            "h": 100,
            "type": "Region-to-Text",
            "bbox": [100, 100, 500, 500],
            "answer": "Hi",
            "meta": {"cat": "scene"},
        },
        {
            "qid": "b",
            "img": "i.png",
            "w": 200,
            "h": 100,
            "type": "T2R",
            "bbox": [[0, 0, 1000, 1000], [[0, 0], [500, 0], [500, 500]]],
            "answer": "Hi",
        },
    ]
    _write_jsonl(tmp_path / "b.jsonl", records)
    mapping = parse_field_map(
        "id=qid,image=img,width=w,height=h,task=type,box=bbox,boxes=bbox,text=answer,"
        "category=meta.cat"
    )
    a, b = load_bench(tmp_path / "b.jsonl", mapping, coords="rel1000")
    assert (a.task, a.box, a.category, a.text) == ("r2t", [20.0, 10.0, 100.0, 50.0], "scene", "Hi")
    assert a.prompt == "What is the text at location [20, 10, 100, 50]?"
    assert b.task == "t2r" and b.category == "default"
    assert b.boxes == [[0.0, 0.0, 200.0, 100.0], [[0.0, 0.0], [100.0, 0.0], [100.0, 50.0]]]
    assert b.prompt == 'Where is "Hi" located in the image?'
    assert a.image_path == tmp_path / "i.png"


def test_loader_errors_are_clear(tmp_path):
    _write_jsonl(
        tmp_path / "b.jsonl",
        [{"id": "x", "image": "i.png", "width": 9, "height": 9, "task": "r2t", "text": "a"}],
    )
    with pytest.raises(ValueError, match="needs box"):
        load_bench(tmp_path / "b.jsonl")
    _write_jsonl(
        tmp_path / "c.jsonl",
        [{"id": "x", "image": "i.png", "width": 9, "height": 9, "task": "r2t", "box": [0, 0, 1, 1]}]
        * 2,
    )
    with pytest.raises(ValueError, match="duplicate query id"):
        load_bench(tmp_path / "c.jsonl")
    with pytest.raises(ValueError, match="unknown fields"):
        parse_field_map("picture=img")


def _scene(tmp_path, name, instances, size=(100, 50)):
    Image.new("RGB", size, "white").save(tmp_path / name)
    return {"image": name, "instances": instances}


def test_builder_merges_canonical_duplicates_and_skips_ignore(tmp_path):
    ann = tmp_path / "annotations.jsonl"
    _write_jsonl(
        ann,
        [
            _scene(
                tmp_path,
                "a.png",
                [
                    {"text": "Ave", "points": [[0, 0], [10, 0], [10, 10], [0, 10]]},
                    {"text": "Ave.", "points": [[20, 0], [30, 0], [30, 10], [20, 10]]},
                    {"text": "ave", "box": [40, 0, 50, 10]},
                    {
                        "text": "###",
                        "points": [[60, 0], [70, 0], [70, 10], [60, 10]],
                        "ignore": True,
                    },
                    {"text": "Main St", "box": [0, 20, 40, 30]},
                    {"text": "MainSt", "box": [50, 20, 90, 30]},
                ],
            )
        ],
    )
    queries = build_bench(read_jsonl(ann, "scene", "toy"), tmp_path / "bench.jsonl")
    r2t = [q for q in queries if q.task == "r2t"]
    t2r = [q for q in queries if q.task == "t2r"]
    # 5 legible regions, 3 canonical strings ("Ave", "ave", "MainSt") -> 3 per direction,
    # rounded down to a multiple of 5 -> 0: this image alone is too small
    assert (len(r2t), len(t2r)) == (0, 0)
    # two copies of the image: 10 R2T and 6 T2R candidates -> 5 per direction
    _write_jsonl(ann, [json.loads(ann.read_text())] * 2)
    queries = build_bench(read_jsonl(ann, "scene", "toy"), tmp_path / "bench.jsonl")
    r2t = [q for q in queries if q.task == "r2t"]
    t2r = [q for q in queries if q.task == "t2r"]
    assert (len(r2t), len(t2r)) == (5, 5)
    assert all("###" not in q.text for q in queries)
    all_t2r = build_bench(
        read_jsonl(ann, "scene", "toy"), tmp_path / "b.jsonl", quotas={"scene": 12}
    )
    assert sum(q.task == "t2r" for q in all_t2r) == 5
    # the 60-pixel ignore box is never a target
    assert all(b != [[60, 0], [70, 0], [70, 10], [60, 10]] for q in t2r for b in q.boxes)


def test_builder_candidates_are_exact(tmp_path):
    from ocrkit.tabench.builder import image_candidates

    ann = tmp_path / "annotations.jsonl"
    _write_jsonl(
        ann,
        [
            _scene(
                tmp_path,
                "a.png",
                [
                    {"text": "Ave", "points": [[0, 0], [10, 0], [10, 10], [0, 10]]},
                    {"text": "Ave.", "box": [20, 0, 30, 10]},
                    {"text": "###", "box": [60, 0, 70, 10]},
                    {"text": "Main St", "box": [0, 20, 40, 30]},
                    {"text": "MainSt", "box": [50, 20, 90, 30]},
                ],
            )
        ],
    )
    (img,) = read_jsonl(ann, "scene", "toy")
    c = image_candidates(img, tmp_path)
    assert [q.box for q in c.r2t] == [
        [0, 0, 10, 10],
        [20, 0, 30, 10],
        [0, 20, 40, 30],
        [50, 20, 90, 30],
    ]
    assert c.r2t[0].prompt == "What is the text at location [0, 0, 10, 10]?"
    groups = {q.text: q.boxes for q in c.t2r}
    # default: the paper's axis-aligned boxes (the quadrilateral becomes its enclosing box)
    assert groups == {
        "Ave": [[0, 0, 10, 10], [20, 0, 30, 10]],
        "Main St": [[0, 20, 40, 30], [50, 20, 90, 30]],
    }
    poly = {q.text: q.boxes for q in image_candidates(img, tmp_path, "polygon").t2r}
    assert poly["Ave"] == [[[0, 0], [10, 0], [10, 10], [0, 10]], [20, 0, 30, 10]]
    assert c.t2r[0].prompt == 'Where is "Ave" located in the image?'
    assert c.t2r[0].image == "a.png" and (c.t2r[0].width, c.t2r[0].height) == (100, 50)


def test_quota_rounding_and_seeded_sampling(tmp_path):
    assert per_direction(None, 13, 9) == 5
    assert per_direction(30, 40, 40) == 15
    assert per_direction(28, 40, 40) == 10
    assert per_direction(100, 4, 40) == 0
    ann = tmp_path / "annotations.jsonl"
    recs = [
        _scene(
            tmp_path, f"{i}.png", [{"text": f"w{i}x{j}", "box": [j, 0, j + 5, 5]} for j in range(3)]
        )
        for i in range(10)
    ]
    _write_jsonl(ann, recs)
    one = build_bench(read_jsonl(ann, "scene", "t"), tmp_path / "b.jsonl", {"scene": 20})
    two = build_bench(read_jsonl(ann, "scene", "t"), tmp_path / "b.jsonl", {"scene": 20})
    assert [q.to_record() for q in one] == [q.to_record() for q in two]
    assert sum(q.task == "r2t" for q in one) == sum(q.task == "t2r" for q in one) == 10
    other = build_bench(read_jsonl(ann, "scene", "t"), tmp_path / "b.jsonl", {"scene": 20}, seed=7)
    assert {q.text for q in other} != {q.text for q in one}
    save_bench(tmp_path / "b.jsonl", one)
    assert [q.to_record() for q in load_bench(tmp_path / "b.jsonl")] == [q.to_record() for q in one]
    with pytest.raises(ValueError, match="unknown categories"):
        build_bench(read_jsonl(ann, "scene", "t"), tmp_path / "b.jsonl", {"docs": 10})
