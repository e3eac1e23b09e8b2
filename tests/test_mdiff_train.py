"""MDiff4STR through the real trainer, the recipes, and the samplers benchmark script."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import pytest
import torch
from bench_scripts import benchmark_script
from word_fixtures import WORDS, Words, train_on_words, word_image

from ocrkit.config import load_config

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes" / "str"
TINY_MODEL = {
    "backbone": {"name": "vit_tiny", "embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": 8},
    "decoder": {"name": "mdiff", "depth": 1, "num_heads": 2, "dropout": 0.0},
    "charset": "36",
    "max_length": 6,
    "img_size": [32, 128],
}


def test_overfits_through_the_trainer_and_reloads(tmp_path: Path) -> None:
    from ocrkit.models import Recognizer

    state = train_on_words(TINY_MODEL, tmp_path, lr=1e-2, warmup_steps=5, eval_every=50)
    assert state.best_metric == 100.0  # read with the default low-confidence sampler, 3 steps
    best = Recognizer.from_pretrained(tmp_path / "best")
    images = [s.image for s in Words().samples]
    for sampler in ("parallel", "low_confidence", "autoregressive", "cloze"):
        with best.decoder.sampling(sampler=sampler, revise=1):
            assert [p.text for p in best.predict(images)] == WORDS, sampler
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any("loss_denoise" in str(entry) for entry in logged)


def test_cpu_recipe_swaps_only_the_decoder(monkeypatch, tmp_path) -> None:
    from ocrkit.models import Recognizer
    from ocrkit.train.settings import TrainConfig

    if not os.environ.get("OCRKIT_DATA"):  # the recipes name ${OCRKIT_DATA}; only loaded here
        monkeypatch.setenv("OCRKIT_DATA", str(tmp_path))

    mdiff = load_config(RECIPES / "vit_tiny_mdiff_cpu.yaml")
    ar = load_config(RECIPES / "vit_tiny_ar_cpu.yaml")
    assert mdiff["data"] == ar["data"] and mdiff["train"] == ar["train"]
    assert mdiff["model"]["backbone"] == ar["model"]["backbone"]
    same = {k: v for k, v in mdiff["model"].items() if k != "decoder"}
    assert same == {k: v for k, v in ar["model"].items() if k != "decoder"}
    spec = mdiff["model"]["decoder"]
    assert spec["name"] == "mdiff" and spec["depth"] == ar["model"]["decoder"]["depth"]
    TrainConfig.from_dict(mdiff["train"]).validate()
    model = Recognizer.from_config(mdiff["model"])
    assert model.decoder.embed_dim == model.backbone.num_features  # width = encoder width


@pytest.mark.parametrize(
    ("name", "depths", "layers"), [("small", [3, 6, 3], 3), ("base", [6, 6, 6], 6)]
)
def test_paper_recipes(monkeypatch, name: str, depths: list[int], layers: int) -> None:
    from ocrkit.models import Recognizer
    from ocrkit.train.settings import TrainConfig

    monkeypatch.setenv("UNION14M", "/data/u14m")
    monkeypatch.setenv("UNION14M_FILTER", "/data/u14m_filter")
    recipe = load_config(RECIPES / f"svtrv2_{name}_mdiff.yaml")
    train = TrainConfig.from_dict(recipe["train"])
    train.validate()
    assert (train.lr, train.weight_decay, train.epochs, train.batch_size) == (5e-4, 0.05, 40, 256)
    assert train.schedule == "onecycle" and train.pct_start == pytest.approx(1.5 / 40)
    assert train.clip_grad_norm == 20.0 and train.mixed_precision == "bf16"
    assert len(recipe["data"]["train"]) == 5
    model = Recognizer.from_config(recipe["model"])
    assert [len(s) for s in model.backbone.stages] == depths and len(model.decoder.layers) == layers
    assert model.decoder.embed_dim == 384 and model.decoder.defaults["sampler"] == "low_confidence"
    assert model.decoder.sample_k == 3 and len(model.decoder.strategies) == 6


def test_samplers_benchmark_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ocrkit.models import Recognizer

    data = tmp_path / "words"
    (data / "images").mkdir(parents=True)
    lines = []
    for i, word in enumerate(WORDS):
        cv2.imwrite(str(data / "images" / f"{i}.png"), word_image(word))
        lines.append(f"images/{i}.png\t{word}")
    (data / "labels.tsv").write_text("\n".join(lines) + "\n")
    torch.manual_seed(0)
    Recognizer.from_config(TINY_MODEL).save_pretrained(tmp_path / "mdiff")
    ar = {**TINY_MODEL, "decoder": {"name": "ar", "embed_dim": 32, "depth": 1, "num_heads": 2}}
    Recognizer.from_config(ar).save_pretrained(tmp_path / "ar")

    out, js = tmp_path / "table.md", tmp_path / "table.json"
    argv = [
        "--model",
        str(tmp_path / "mdiff"),
        "--data",
        str(data),
        "--ar-model",
        str(tmp_path / "ar"),
    ]
    argv += ["--samplers", "parallel", "low_confidence", "--out", str(out), "--json", str(js)]
    with benchmark_script("mdiff_samplers") as script:
        assert script.main(argv) == 0
    table = out.read_text()
    assert (
        "| decoder | sampler | steps | revise | passes/batch | words | combined | img/s |" in table
    )
    rows = json.loads(js.read_text())["rows"]
    assert [(r["decoder"], r["sampler"], r["revise"]) for r in rows] == [
        ("ar (KV cache)", "greedy", 0),
        ("mdiff", "parallel", 0),
        ("mdiff", "parallel", 1),
        ("mdiff", "low_confidence", 0),
        ("mdiff", "low_confidence", 1),
    ]
    assert rows[1]["passes"] == 1.0 and rows[2]["passes"] == 2.0
    assert all(set(r["accuracy"]) == {"words", "combined"} for r in rows)
    with pytest.raises(SystemExit):
        script.main(["--model", str(tmp_path / "ar"), "--data", str(data)])
