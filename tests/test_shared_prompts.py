"""The wording and answer format TABench and Q-Mask anchoring share (ocrkit/tabench/prompts.py):
one leaf module, and a training instance asks exactly what the bench asks."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from ocrkit.tabench.prompts import (
    R2T_PROMPT,
    T2R_PROMPT,
    r2t_prompt,
    read_t2r_answer,
    t2r_answer,
    t2r_prompt,
    vqa_prompt,
)

TABENCH = Path(__file__).resolve().parents[1] / "ocrkit" / "tabench"


def test_the_shared_text_modules_are_leaves():
    for name in ("prompts.py", "parsing.py", "normalize.py"):
        tree = ast.parse((TABENCH / name).read_text(encoding="utf-8"))
        imported = {
            node.module if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names
        }
        assert not {m for m in imported if m and m.startswith("ocrkit")}, name


def test_known_wording():
    assert r2t_prompt([10.4, 20.6, 30, 40]) == "What is the text at location [10, 21, 30, 40]?"
    assert t2r_prompt("EXIT") == 'Where is "EXIT" located in the image?'
    assert vqa_prompt(" Date: ") == 'What is the value of the field "Date"?'
    assert t2r_answer([[1.6, 2, 3, 4]]) == '[{"bbox_2d": [2, 2, 3, 4]}]'


def test_answers_round_trip_through_both_readers():
    from ocrkit.tabench.parsing import find_boxes

    answer = t2r_answer([[10, 20, 30, 40], [5, 6, 7, 8]])
    assert read_t2r_answer(answer) == [[10, 20, 30, 40], [5, 6, 7, 8]]
    assert find_boxes(answer) == [[10, 20, 30, 40], [5, 6, 7, 8]]
    assert read_t2r_answer("the box is [1, 2, 3, 4]") is None


def test_training_instances_ask_what_the_bench_asks(tmp_path):
    from PIL import Image

    from ocrkit.anchoring.generate import instances_from_image
    from ocrkit.tabench.adapters import build_adapter
    from ocrkit.tabench.builder import image_candidates
    from ocrkit.tabench.sources import AnnotatedImage, Region

    path = tmp_path / "a.png"
    Image.new("RGB", (64, 32)).save(path)
    img = AnnotatedImage(path, [Region("OPEN", [4, 4, 40, 20])], "scene", "test", size=(64, 32))
    bench = image_candidates(img, tmp_path)
    train = instances_from_image(img, np.random.default_rng(0), ("r2t", "t2r"), raw=[])
    by_task = {inst.task: inst.question for inst in train}
    assert by_task["r2t"] == bench.r2t[0].prompt == "What is the text at location [4, 4, 40, 20]?"
    assert by_task["t2r"] == bench.t2r[0].prompt == 'Where is "OPEN" located in the image?'
    adapter = build_adapter("qwen2_5_vl")  # the paper prompt set uses the same templates
    assert adapter.r2t_template == R2T_PROMPT and adapter.t2r_template.startswith(T2R_PROMPT)
