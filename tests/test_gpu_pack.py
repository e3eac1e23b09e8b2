"""benchmarks/gpu_pack.py: the packed copy of a recipe's data keeps its held-out slices."""

from __future__ import annotations

import cv2
import numpy as np
import torch
import yaml
from bench_scripts import benchmark_script

from ocrkit.config import load_config
from ocrkit.data import read_image
from ocrkit.models import Recognizer
from ocrkit.train.tasks import build_str_data

WORDS = ["cat", "dog", "sun", "tree", "ox", "hi", "sky", "red", "blue", "map"]
MODEL = {
    "backbone": {"name": "vit_tiny", "depth": 1, "embed_dim": 32, "num_heads": 2, "patch_size": 8},
    "decoder": {"name": "ar", "embed_dim": 32, "depth": 1, "num_heads": 2},
    "charset": "36",
    "img_size": [32, 128],
}


def write_set(folder, words, height):
    """A folder set whose ``i``-th image is ``height`` x ``2 * height`` (one gray level each)."""
    (folder / "images").mkdir(parents=True)
    lines = []
    for i, word in enumerate(words):
        image = np.full((height, 2 * height, 3), 10 * i, np.uint8)
        cv2.imwrite(str(folder / "images" / f"{i}.png"), image)
        lines.append(f"images/{i}.png\t{word}")
    (folder / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_pack_keeps_heldout_slices_scales_down_and_subsamples(tmp_path, monkeypatch):
    write_set(tmp_path / "scene", WORDS, height=64)  # taller than the model: scaled to 32
    write_set(tmp_path / "docs", WORDS, height=20)  # shorter: kept as is
    Recognizer.from_config(MODEL).save_pretrained(tmp_path / "start")
    recipe = {
        "task": "str",
        "model": MODEL,
        "init": {"model": str(tmp_path / "start")},
        "data": {
            "protocol": "parseq36",
            "train": [
                {"path": str(tmp_path / "scene"), "holdout": 3, "repeat": 2},
                {"path": str(tmp_path / "docs"), "max_samples": 8},
            ],
        },
        "train": {"seed": 0},
    }
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    out = tmp_path / "pack"
    monkeypatch.chdir(tmp_path)  # the packed recipe's paths are relative to the cwd
    argv = ["--recipe", "recipe.yaml", "--output", "pack", "--max-per-set", "4", "--quality", "95"]
    with benchmark_script("gpu_pack") as script:
        assert script.main(argv) == 0

    scene = (out / "scene" / "labels.tsv").read_text(encoding="utf-8").splitlines()
    assert [line.split("\t")[1] for line in scene] == WORDS  # whole and in order (holdout)
    assert read_image(out / "scene" / "images" / "000000.jpg").shape == (32, 64, 3)
    docs = (out / "docs" / "labels.tsv").read_text(encoding="utf-8").splitlines()
    assert len(docs) == 4 and {line.split("\t")[1] for line in docs} < set(WORDS)
    assert read_image(out / "docs" / "images" / "000000.jpg").shape == (20, 40, 3)

    packed = load_config("pack/recipe.yaml")
    assert packed["model"] == MODEL  # from _base_
    assert packed["data"]["train"] == [
        {"path": "pack/scene", "name": "scene", "holdout": 3, "repeat": 2},
        {"path": "pack/docs", "name": "docs"},
    ]
    assert packed["init"]["model"] == "pack/init_model"
    _, held = build_str_data(load_config("recipe.yaml"), (32, 128), seed=0, workers=0)
    _, held_packed = build_str_data(packed, (32, 128), seed=0, workers=0)
    assert list(held) == list(held_packed) == ["scene_holdout"]
    assert held_packed["scene_holdout"].labels == held["scene_holdout"].labels

    start = Recognizer.from_pretrained(tmp_path / "start").state_dict()
    copied = Recognizer.from_pretrained(out / "init_model").state_dict()
    assert start.keys() == copied.keys()
    assert all(torch.equal(start[k], copied[k]) for k in start)
