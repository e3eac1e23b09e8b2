"""The qmask task through the generic trainer (both stages) and the anchor commands."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("transformers")

from qmask_helpers import tiny_cache, word_image  # noqa: E402

from ocrkit.cli import main  # noqa: E402


@pytest.fixture
def icdar_set(tmp_path: Path) -> Path:
    (tmp_path / "data" / "images").mkdir(parents=True)
    lines = []
    for i, word in enumerate(["OPEN", "EXIT", "SALE", "CAFE"]):
        cv2.imwrite(str(tmp_path / "data" / "images" / f"{i}.png"), word_image(word))
        pts = [[14, 44], [96, 44], [96, 70], [14, 70]]
        lines.append(
            json.dumps({"image": f"images/{i}.png", "instances": [{"text": word, "points": pts}]})
        )
    (tmp_path / "data" / "annotations.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path / "data"


def recipe(tmp_path: Path, data: Path, **extra) -> Path:
    import yaml

    cfg = {
        "task": "qmask",
        "model": {"tiny": "qwen2_vl", "head": {"size": "small", "channels": 16, "min_channels": 8}},
        "data": {
            "train": [{"type": "icdar", "path": str(data), "tasks": ["r2t", "t2r"], "prior": "gt"}],
            "val": [{"type": "icdar", "path": str(data), "tasks": ["r2t"], "limit": 2}],
            "val_generate": 1,
            "spi": {"gammas": [1.0, 0.5, 0.0]},
        },
        "train": {
            "max_steps": 2,
            "batch_size": 2,
            "lr": 3e-5,
            "save_every": 2,
            "log_every": 1,
            "trackers": [],
            "best_metric": "val/dice",
            "threads": 2,
        },
    }
    for key, value in extra.items():
        cfg[key] = value
    path = tmp_path / f"recipe_{len(extra)}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_two_stages_through_the_trainer(
    tmp_path, icdar_set, monkeypatch, capsys, tmp_path_factory
) -> None:
    monkeypatch.setenv("OCRKIT_CACHE", str(tiny_cache(tmp_path_factory)))
    stage1 = tmp_path / "s1"
    assert main(["train", str(recipe(tmp_path, icdar_set)), "--output", str(stage1)]) == 0
    final = stage1 / "final"
    assert (final / "qmask_config.json").is_file() and (final / "vlm" / "config.json").is_file()
    assert (
        json.loads((stage1 / "best" / "trainer_state.json").read_text())["metrics"]["val/dice"] >= 0
    )
    # Stage 2: start from stage 1, vision encoder frozen, lower lr.
    s2 = recipe(tmp_path, icdar_set, init={"qmask": str(final)}, model={"freeze_vision": True})
    out = capsys.readouterr().out
    assert "# train_instances: 8" in out
    assert main(["train", str(s2), "train.lr=5e-6", "--output", str(tmp_path / "s2")]) == 0
    out = capsys.readouterr().out
    assert "# freeze_vision: True" in out
    cfg = json.loads((tmp_path / "s2" / "final" / "qmask_config.json").read_text())
    assert cfg["freeze_vision"] is True and cfg["tiny"] == "qwen2_vl"
    bad = recipe(tmp_path, icdar_set, init={"qmask": str(final)}, model={"tiny": "qwen3_vl"})
    assert main(["train", str(bad), "--output", str(tmp_path / "s3")]) == 1
    assert "only the trainable policy" in capsys.readouterr().err

    # ocrkit anchor: answer, boxes, overlay PNG, JSON
    image = tmp_path / "word.png"
    cv2.imwrite(str(image), word_image("OPEN"))
    overlay, report = tmp_path / "o.png", tmp_path / "o.json"
    query = "What is the text at location [14, 44, 96, 70]?"
    args = [
        "anchor",
        str(image),
        "-q",
        query,
        "--model",
        str(final),
        "--out",
        str(overlay),
        "--json",
        str(report),
        "--max-new-tokens",
        "4",
    ]
    assert main(args) == 0
    assert cv2.imread(str(overlay)).shape == (112, 112, 3)
    assert set(json.loads(report.read_text())) == {"answer", "boxes", "scores", "overlay"}
    assert "answer:" in capsys.readouterr().out


def test_anchor_without_a_model_says_what_to_do(tmp_path, capsys) -> None:
    image = tmp_path / "w.png"
    cv2.imwrite(str(image), word_image())
    assert main(["anchor", str(image), "-q", "hi"]) == 1
    assert "--model DIR" in capsys.readouterr().err


def test_anchor_data_writes_instances_and_previews(tmp_path, icdar_set, capsys) -> None:
    out = tmp_path / "gen"
    assert (
        main(
            [
                "anchor-data",
                "--out",
                str(out),
                "--icdar",
                str(icdar_set),
                "--tasks",
                "r2t,t2r,read",
                "--preview",
                "3",
            ]
        )
        == 0
    )
    lines = (out / "instances.jsonl").read_text().splitlines()
    assert len(lines) == 12  # 4 images x (r2t, t2r, read)
    assert len(list((out / "preview").glob("*.png"))) == 3
    prompts = json.loads((out / "preview" / "prompts.json").read_text())
    assert all(p["prompt"].endswith("?") or p["prompt"].endswith(".") for p in prompts)
    assert "r2t: 4" in capsys.readouterr().out
    assert np.asarray(cv2.imread(str(next((out / "preview").glob("*.png"))))).ndim == 3
