"""benchmarks/qmask_study.py: the study's model, its scoring pieces with known answers, and a
2-step run of every phase on rendered fixtures (no shared data, no download)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from bench_scripts import benchmark_script

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
TINY_SPEC = {
    "name": "test-tiny",
    "family": "qwen2_5_vl",
    "seed": 0,
    "text": {
        "hidden_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 96,
    },
    "vision": {"hidden_size": 32, "depth": 1, "num_heads": 2, "intermediate_size": 48},
    "qmask": {
        "finetune": "full",
        "max_pixels": 12544,
        "head": {"channels": 16, "upsample_stages": 1, "attn_dim": 32, "mlp_dim": 32},
        "lambda_seg": 1.0,
    },
}


@pytest.fixture(scope="module")
def study():
    sys.path.insert(0, str(BENCHMARKS))  # the script imports its sibling modules
    try:
        with benchmark_script("qmask_study") as module:
            yield module
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_study_config_takes_every_named_size(study):
    from ocrkit.testing.tiny_vlm import tiny_processor

    tok = tiny_processor("qwen2_5_vl").tokenizer
    config = study.study_config(TINY_SPEC, tok)
    assert config.text_config.hidden_size == 64
    assert config.text_config.num_hidden_layers == 1
    assert len(config.text_config.layer_types) == 1
    assert config.vision_config.depth == 1
    assert config.vision_config.out_hidden_size == 64  # the merger feeds the text width
    bad = {**TINY_SPEC, "text": {**TINY_SPEC["text"], "num_attention_heads": 2}}
    with pytest.raises(ValueError, match="head_dim"):
        study.study_config(bad, tok)


def test_committed_spec_names_the_head_explicitly(study):
    spec = yaml.safe_load(study.MODEL_SPEC.read_text())
    head = spec["qmask"]["head"]
    assert {"channels", "upsample_stages", "attn_dim", "mlp_dim", "min_channels"} <= set(head)
    assert spec["qmask"]["max_pixels"] == 320 * 320


def test_pointing_game_has_known_answers(study):
    heat = np.zeros((10, 20), np.float32)
    heat[2, 15] = 1.0
    hit, chance = study.pointing(heat, [[10, 0, 20, 5]])
    assert hit and chance == pytest.approx(50 / 200)
    miss, _ = study.pointing(heat, [[0, 0, 10, 10]])
    assert not miss


def _fixture_bench(tmp_path: Path, study):
    from ocrkit.anchoring.generate import render_scenes
    from ocrkit.tabench.builder import build_bench
    from ocrkit.tabench.schema import save_bench
    from ocrkit.tabench.sources import read_jsonl

    train = render_scenes(tmp_path / "train_scenes", 4, seed=0)
    held = render_scenes(tmp_path / "bench_scenes", 2, seed=5)
    bench = tmp_path / "bench" / "bench.jsonl"
    bench.parent.mkdir()
    queries = build_bench(read_jsonl(held, "Synth", "bench_scenes"), bench)
    save_bench(bench, queries)
    return train, bench


def test_scoring_both_box_sources_with_known_answers(tmp_path, study):
    from ocrkit.anchoring.generate import t2r_answer

    _, bench = _fixture_bench(tmp_path, study)
    queries = study.bench_subset(bench, None)
    assert {q.task for q in queries} == {"r2t", "t2r"}
    answers = []
    for q in queries:  # a perfect answer; the mask finds nothing
        boxes = study.target_boxes(q)
        answer = q.text if q.task == "r2t" else t2r_answer(boxes)
        answers.append({"id": q.id, "answer": answer, "mask_boxes": [], "hit": True})
        answers[-1].update(chance=0.1, seconds=1.0)
    result = study.score_arm(queries, answers)
    assert result["text"]["r2t"]["accuracy"] == 100.0
    assert result["text"]["t2r"]["f1"] == 100.0
    assert result["mask"]["t2r"]["f1"] == 0.0  # T2R from the (empty) mask
    assert result["mask"]["r2t"]["accuracy"] == 100.0  # R2T is always the answer text
    assert result["pointing"]["t2r"]["hit_rate"] == 100.0
    assert result["pointing"]["t2r"]["chance"] == pytest.approx(10.0)
    assert study.bench_subset(bench, 1) == [
        next(q for q in queries if q.task == t) for t in ("r2t", "t2r")
    ]


def test_two_step_study_end_to_end(tmp_path, study, monkeypatch):
    train, bench = _fixture_bench(tmp_path, study)
    spec = tmp_path / "model.yaml"
    spec.write_text(yaml.safe_dump(TINY_SPEC))
    recipe = yaml.safe_load(study.RECIPE.read_text())
    data_spec = {"type": "icdar", "path": str(train), "tasks": ["r2t", "t2r", "read"]}
    recipe["data"] = {
        "train": [{**data_spec, "per_image": 1}],
        "val": [{**data_spec, "tasks": ["t2r"], "per_image": 1}],
        "val_max_samples": 2,
        "val_generate": 1,
        "cache_dir": str(tmp_path / "cache"),
    }
    recipe["train"].update(batch_size=2, log_every=1)
    recipe_path = tmp_path / "recipe.yaml"
    recipe_path.write_text(yaml.safe_dump(recipe))
    out = tmp_path / "study"
    argv = ["--steps", "2", "--output", str(out), "--recipe", str(recipe_path)]
    argv += ["--model-spec", str(spec), "--bench", str(bench), "--data", str(tmp_path)]
    # the script points OCRKIT_DATA at --data for its subprocesses: restored after the test
    monkeypatch.setenv("OCRKIT_DATA", os.environ.get("OCRKIT_DATA", ""))
    argv += ["--bench-limit", "2", "--max-new-tokens", "8"]
    from ocrkit.tabench.scoring import score

    queries = study.bench_subset(bench, 2)
    perfect = {q.id: {"id": q.id, "text": q.text, "boxes": q.boxes} for q in queries}
    reference = tmp_path / "perfect.json"
    reference.write_text(json.dumps(score(queries, perfect)))
    argv += ["--heatmaps", "1", "--reference", f"perfect={reference}"]
    assert study.main(argv) == 0
    summary = json.loads((out / "qmask_study.json").read_text())
    assert set(summary["arms"]) == {"cqmd", "no_cqmd"}
    for arm in ("cqmd", "no_cqmd"):
        s = summary["arms"][arm]
        assert s["steps"] == 2
        assert s["text"]["r2t"]["n"] + s["text"]["t2r"]["n"] == 4
    saved = [json.loads((out / a / "final/qmask_config.json").read_text()) for a in summary["arms"]]
    assert [c["lambda_seg"] for c in saved] == [1.0, 0.0]
    assert summary["references"]["perfect"]["overall"] == 100.0
    for png in summary["figures"]:
        assert (out / png).stat().st_size > 1000
    assert "qmask_study_heatmaps.png" in summary["figures"]
    answers = (out / "cqmd" / "bench_answers.jsonl").read_text().splitlines()
    assert len(answers) == 4
    assert study.main(argv) == 0  # a rerun finds every phase done and answers nothing again
    assert (out / "cqmd" / "bench_answers.jsonl").read_text().splitlines() == answers
