"""benchmarks/gpu_finetune.py end to end on a CPU: 2 steps of the default model's GPU recipe."""

from __future__ import annotations

import importlib.util
import json

import cv2
import pytest
from bench_scripts import benchmark_script
from word_fixtures import word_image

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("rapidocr") is None or importlib.util.find_spec("onnx") is None,
    reason="needs the rapidocr wheel (the recipe starts from its PP-OCRv6 small) and onnx",
)

WORDS = ["Cat", "dog", "SUN", "a1b2", "Tree", "7up", "Ox", "hi!"]


def test_two_cpu_steps_report_heldout_accuracy_before_and_after(tmp_path, monkeypatch, capsys):
    (tmp_path / "set" / "images").mkdir(parents=True)
    lines = []
    for i, word in enumerate(WORDS):
        cv2.imwrite(str(tmp_path / "set" / "images" / f"{i}.png"), word_image(word))
        lines.append(f"images/{i}.png\t{word}")
    (tmp_path / "set" / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("OCRKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ACCELERATE_USE_CPU", "true")  # restored after the test
    data = f'data.train=[{{path: "{tmp_path / "set"}", holdout: 3}}]'
    out = tmp_path / "result.json"
    with benchmark_script("gpu_finetune") as script:
        code = script.main(
            ["--device", "cpu", "--steps", "2", "--output", str(tmp_path / "run"),
             "--json", str(out), data, "train.batch_size=2", "train.num_workers=0",
             "train.threads=1", "train.eval_every=0", "train.save_every=0"]
        )  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())
    assert result["steps"] == 2 and result["batch_size"] == 2 and result["device"] == "cpu"
    assert result["heldout_before"]["val/samples"] == 3.0
    assert set(result["heldout_after"]) == set(result["heldout_before"])
    assert 0.0 <= result["heldout_after"]["val/accuracy"] <= 100.0
    printed = capsys.readouterr().out
    assert "held-out val/accuracy:" in printed and "steps 2," in printed
