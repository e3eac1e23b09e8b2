"""``ocrkit tabench build | score | report`` end to end on a tiny generated set."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from ocrkit.cli import main


@pytest.fixture
def annotations(tmp_path):
    records = []
    for i in range(5):
        Image.new("RGB", (120, 40), "white").save(tmp_path / f"{i}.png")
        records.append(
            {
                "image": f"{i}.png",
                "category": "toy",
                "instances": [
                    {"text": f"w{i}", "box": [0, 0, 20, 10]},
                    {"text": "###", "box": [30, 0, 50, 10]},
                ],
            }
        )
    path = tmp_path / "ann.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_build_score_report(tmp_path, annotations, capsys):
    bench = tmp_path / "out" / "bench.jsonl"
    assert main(["tabench", "build", "--jsonl", str(annotations), "--out", str(bench)]) == 0
    queries = [json.loads(x) for x in bench.read_text().splitlines()]
    assert len(queries) == 10 and queries[0]["image"] == "../0.png"
    assert set(queries[0]) >= {
        "id",
        "image",
        "width",
        "height",
        "task",
        "prompt",
        "text",
        "category",
        "language",
        "source",
    }
    preds = tmp_path / "preds.jsonl"
    lines = []
    for q in queries:  # every R2T right; T2R: 3 right, 2 wrong boxes
        if q["task"] == "r2t":
            lines.append({"id": q["id"], "text": q["text"]})
        else:
            wrong = q["text"] in {"w3", "w4"}
            lines.append({"id": q["id"], "boxes": [[60, 20, 80, 30] if wrong else q["boxes"][0]]})
    preds.write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = tmp_path / "scores.json"
    md, png = tmp_path / "r.md", tmp_path / "r.png"
    argv = [
        "tabench",
        "score",
        "--bench",
        str(bench),
        "--predictions",
        str(preds),
        "--json",
        str(out),
        "--report",
        str(md),
        "--plot",
        str(png),
    ]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert result["r2t"] == {"n": 5, "correct": 5, "accuracy": 100.0}
    t = result["t2r"]
    assert (t["tp"], t["fp"], t["fn"], t["f1"]) == (3, 2, 2, 60.0)
    assert result["overall"] == 80.0 and "toy" in result["by_category"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| all | 5 | 100.00 |" in md.read_text()
    assert "Overall=80.00" in capsys.readouterr().out
    md2 = tmp_path / "again.md"
    assert main(["tabench", "report", "--scores", str(out), "--out", str(md2)]) == 0
    assert md2.with_suffix(".png").exists()


def test_cli_errors_and_help(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["tabench", "score", "--help"])
    assert exc.value.code == 0 and "--match-order" in capsys.readouterr().out
    assert main(["tabench", "build", "--out", str(tmp_path / "b.jsonl")]) == 1
    assert "give at least one of" in capsys.readouterr().err
    assert main(["tabench", "run", "--bench", str(tmp_path / "nope.jsonl"), "--out", "x"]) == 1
