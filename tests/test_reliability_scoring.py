"""Scoring survives any predictions file; bench and cache files fail by line (issue 14, item 7)."""

from __future__ import annotations

import json

import pytest

from ocrkit.cli import main
from ocrkit.tabench.schema import Query, load_bench, save_bench

DEEP = "[" * 100_000 + "]" * 100_000
BIG = "9" * 400


def _bench(tmp_path):
    queries = [
        Query("r0", "x.png", 100, 100, "r2t", "p", "hello", box=[0, 0, 10, 10]),
        Query("r1", "x.png", 100, 100, "r2t", "p", "world", box=[0, 0, 10, 10]),
    ]
    for i in range(6):
        queries.append(Query(f"t{i}", "x.png", 100, 100, "t2r", "p", "w", boxes=[[0, 0, 10, 10]]))
    save_bench(tmp_path / "bench.jsonl", queries)
    return tmp_path / "bench.jsonl"


def test_every_bad_prediction_line_is_unparsable_with_its_line(tmp_path, capsys):
    bench = _bench(tmp_path)
    lines = [
        b'{"id": "r0", "text": "hello"}',
        b'{"id": "t0", "boxes": [{"x": 1}]}',  # was "error: 0"
        b'{"id": "t1", "boxes": ' + DEEP.encode() + b"}",  # was RecursionError
        b'{"id": "t2", "boxes": [[' + BIG.encode() + b", 0, 10, 10]]}",  # was OverflowError
        b'{"id": "r1", "text": "caf\xe9"}',  # was UnicodeDecodeError
        b'{"id": "t3", "boxes": [[NaN, 0, 10, 10]]}',  # counted as valid before
        b'{"id": "t4", "boxes": [[0, 0, Infinity, 10]]}',
        b'{"id": "t5", "boxes": [[0, 0, 10, 10]]}',
        b"\xff\xfe garbage without an id",
    ]
    pred = tmp_path / "pred.jsonl"
    pred.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "s.json"
    rc = main(["tabench", "score", "--bench", str(bench), "--predictions", str(pred), "--json", str(out)])  # fmt: skip
    assert rc == 0
    result = json.loads(out.read_text())
    assert result["unparsable"] == {"r2t": 1, "t2r": 5}
    assert result["missing"] == {"r2t": 0, "t2r": 0}
    assert result["r2t"]["correct"] == 1 and result["t2r"]["tp"] == 1
    assert result["bad_prediction_lines"] == 3
    assert result["bad_prediction_line_numbers"] == [3, 5, 9]
    assert "lines 3, 5, 9" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'{"id": "q", "image": "x.png", "task": "r2t", "text": "caf\xe9"}', "not valid UTF-8"),
        (
            b'{"id": "q", "image": "x.png", "width": "abc", "height": 9, "box": [0, 0, 1, 1]}',
            "width",
        ),  # fmt: skip
        (
            b'{"id": "q", "image": "x.png", "width": 9, "height": 9, "box": [0, NaN, 1, 1]}',
            "finite",
        ),  # fmt: skip
        (
            b'{"id": "q", "image": "x.png", "width": 9, "height": 9, "boxes": [[0, 0, 1, 1e999]]}',
            "finite",
        ),  # fmt: skip
        (b'{"id": "q", "image": ' + DEEP.encode() + b"}", "nested too deeply"),
        (
            b'{"id": "q", "image": "x.png", "width": 9, "height": 9, "task": "r2t", "box": [{"a": 1}]}',
            "box",
        ),  # fmt: skip
        (b"[1, 2, 3]", "not a JSON object"),
    ],
)
def test_bench_errors_name_the_line(tmp_path, line, message):
    good = b'{"id": "ok", "image": "x.png", "width": 9, "height": 9, "task": "r2t", "box": [0, 0, 1, 1]}'  # fmt: skip
    (tmp_path / "b.jsonl").write_bytes(good + b"\n" + line + b"\n")
    with pytest.raises(ValueError, match=rf"b.jsonl:2: .*{message}"):
        load_bench(tmp_path / "b.jsonl")


def test_a_bad_cache_line_never_blocks_a_resume(tmp_path, caplog):
    from ocrkit.tabench.cache import ResponseCache
    from ocrkit.tabench.local import Answerer
    from ocrkit.tabench.runner import cache_path_for, run_bench

    class Echo(Answerer):
        name = "echo"
        asked: list[str] = []

        def key(self, q):
            return f"k-{q.id}"

        def answer(self, q):
            self.asked.append(q.id)
            return {"text": q.text} if q.task == "r2t" else {"boxes": q.boxes}

    queries = load_bench(_bench(tmp_path))
    out = tmp_path / "p.jsonl"
    cache = cache_path_for(out)
    good = json.dumps({"key": "k-r0", "id": "r0", "text": "hello"}).encode()
    bad = [
        DEEP.encode(),
        b'{"key": "k-r1", "id": "r1", "text": "caf\xe9"}',
        b"[1]",
        b'{"key": [1]}',
    ]
    cache.write_bytes(b"\n".join([good, *bad]) + b"\n")
    assert ResponseCache(cache).bad_line_numbers == [2, 3, 4, 5]
    answerer = Echo()
    preds, stats = run_bench(queries, answerer, out, workers=1)
    assert (stats.cached, stats.answered, stats.failed) == (1, 7, 0)
    assert sorted(answerer.asked) == sorted(q.id for q in queries if q.id != "r0")
    assert "lines 2, 3, 4, 5" in caplog.text
