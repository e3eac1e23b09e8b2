"""Pretraining through ``ocrkit train`` (tasks ``mim``/``mnsp``), checkpoints and the transfer to a
recognizer: MIM -> (teacher) -> MNSP -> fine-tune, on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from ocrkit.models import Recognizer
from ocrkit.pretrain import MNSP, MaskedImageModel, load_encoder
from ocrkit.pretrain.tasks import build_unlabeled
from ocrkit.pretrain.views import PretrainViews, collate_views
from ocrkit.train.tasks import TASKS

ENC = {"name": "vit_tiny", "embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": 4}
DEC = {"dim": 32, "depth": 2, "num_heads": 2}
WORDS = ["cat", "dog", "sun", "a1b2"]


@pytest.fixture
def word_folder(tmp_path):
    root = tmp_path / "words"
    (root / "images").mkdir(parents=True)
    lines = []
    for i, word in enumerate(WORDS * 2):
        img = np.full((24 + 4 * i, 100, 3), 255, np.uint8)
        cv2.putText(img, word, (4, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 2)
        cv2.imwrite(str(root / "images" / f"{i}.png"), img)
        lines.append(f"images/{i}.png\t{word}")
    (root / "labels.tsv").write_text("\n".join(lines) + "\n")
    return root


def _recipe(tmp_path, name: str, config: dict) -> str:
    path = tmp_path / f"{name}.yaml"
    train = {"max_steps": 2, "batch_size": 4, "lr": 1e-3, "log_every": 1, "trackers": []}
    path.write_text(yaml.safe_dump({**config, "train": {**train, **config.get("train", {})}}))
    return str(path)


def test_tasks_are_registered() -> None:
    assert {"mim", "mnsp", "str"} <= set(TASKS.list())


def test_unlabeled_data_ignores_labels_and_repeats(word_folder) -> None:
    views = PretrainViews(("small", "large", "zoom"))
    data = build_unlabeled({"data": {"train": [{"path": str(word_folder), "repeat": 2}]}}, views)
    assert len(data) == 16
    np.random.seed(0)
    batch = collate_views([data[0], None, data[9]])
    assert batch["num_skipped"] == 1
    assert {k: tuple(v.shape) for k, v in batch["views"].items()} == {
        "small": (2, 3, 32, 128),
        "large": (2, 3, 32, 128),
        "zoom": (2, 3, 32, 128),
    }


def test_unlabeled_lmdb_and_scene_crops(tmp_path) -> None:
    from ocrkit.data import write_lmdb

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (20, 60, 3), dtype=np.uint8) for _ in range(3)]
    write_lmdb(tmp_path / "u", [(im, None) for im in images], image_format=".png")  # no labels
    scene = tmp_path / "scene"
    (scene / "images").mkdir(parents=True)
    cv2.imwrite(str(scene / "images" / "s.png"), np.full((60, 120, 3), 200, np.uint8))
    quad = [[10, 10], [90, 10], [90, 40], [10, 40]]
    record = {
        "image": "images/s.png",
        "instances": [{"text": "x", "points": quad}, {"text": "###", "points": quad}],
    }
    (scene / "annotations.jsonl").write_text(json.dumps(record) + "\n")
    specs = [str(tmp_path / "u"), {"path": str(scene / "annotations.jsonl")}]
    data = build_unlabeled({"data": {"train": specs}}, PretrainViews(("image",), augment="none"))
    assert len(data) == 3 + 1  # the don't-care word is skipped
    assert data[3].image["image"].shape == (3, 32, 128) and data[0].label is None


def test_pretrain_then_finetune_round_trip(tmp_path, word_folder, capsys) -> None:
    from ocrkit.cli import main

    data = {"train": [str(word_folder)]}
    # 1. MIM (pixel targets): the baseline and the teacher
    mim_out = tmp_path / "mim"
    recipe = _recipe(
        tmp_path, "mim", {"task": "mim", "model": {"encoder": ENC, "decoder": DEC}, "data": data}
    )
    assert main(["train", recipe, "--output", str(mim_out)]) == 0
    config = json.loads((mim_out / "final" / "config.json").read_text())
    assert config["format"] == "ocrkit-pretrain" and config["architecture"] == "MIM"
    assert config["encoder"]["pos_embed"] == "sincos"
    teacher = load_encoder(mim_out / "final")
    # 2. MNSP with the MIM encoder as its frozen teacher
    mnsp_out = tmp_path / "mnsp"
    model_cfg = {"encoder": ENC, "teacher": str(mim_out / "final"), "mim_decoder": DEC}
    recipe = _recipe(tmp_path, "mnsp", {"task": "mnsp", "model": model_cfg, "data": data})
    assert main(["train", recipe, "--output", str(mnsp_out)]) == 0
    printed = capsys.readouterr().out
    assert "# teacher:" in printed and "# train_samples: 8" in printed
    from safetensors.torch import load_file

    saved = load_file(str(mnsp_out / "final" / "model.safetensors"))
    assert not any(k.startswith("teacher.") for k in saved)  # the teacher is not copied
    assert any(k.startswith("nsp_decoder.") for k in saved)
    # the teacher inside the resumable checkpoint is still the MIM encoder, bit for bit
    ckpt = load_file(str(next((mnsp_out / "checkpoints").iterdir()) / "model.safetensors"))
    for key, value in teacher.state_dict().items():
        assert torch.equal(ckpt[f"teacher.{key}"], value)
    # 3. fine-tune a recognizer from the MNSP encoder (layer-wise lr decay on)
    str_out = tmp_path / "str"
    str_model = {
        "backbone": {**ENC, "pos_embed": "sincos"},
        "decoder": {"name": "ar", "embed_dim": 32, "depth": 1, "num_heads": 2},
        "charset": "36",
        "max_length": 6,
    }
    recipe = _recipe(
        tmp_path,
        "str",
        {
            "task": "str",
            "model": str_model,
            "init": {"encoder": str(mnsp_out / "final")},
            "data": {"protocol": "parseq36", "augment": None, "train": [str(word_folder)]},
            "train": {"layer_decay": 0.75, "max_steps": 1},
        },
    )
    parts = TASKS.get("str")(yaml.safe_load(Path(recipe).read_text()))
    encoder = load_encoder(mnsp_out / "final")
    for key, value in encoder.state_dict().items():
        assert torch.equal(parts.model.backbone.state_dict()[key], value), key
    assert main(["train", recipe, "--output", str(str_out)]) == 0
    recognizer = Recognizer.from_pretrained(str_out / "final")
    assert len(recognizer.recognize(np.full((32, 100, 3), 255, np.uint8))) == 1
    # any recognizer folder is an encoder too (a teacher candidate)
    assert load_encoder(str_out / "final").num_features == 32


def test_save_pretrained_and_load_encoder_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    teacher = MaskedImageModel({"encoder": ENC, "decoder": DEC}).encoder
    model = MNSP({"encoder": ENC, "mim_decoder": DEC}, teacher=teacher)
    model.save_pretrained(tmp_path / "out")
    loaded = load_encoder(tmp_path / "out")
    x = torch.randn(2, 3, 16, 64)
    model.eval()
    assert torch.equal(loaded(x), model.encoder(x))
    recognizer = Recognizer.from_config(
        {"backbone": ENC, "decoder": {"name": "ar", "embed_dim": 32, "depth": 1, "num_heads": 2}}
    )
    info = recognizer.load_encoder_weights(tmp_path / "out")
    assert info["prefix"] == "encoder." and not info["missing"]


def test_pretrain_config_errors_name_the_key(tmp_path, word_folder, capsys) -> None:
    from ocrkit.cli import main

    recipe = _recipe(
        tmp_path,
        "bad",
        {"task": "mnsp", "model": {"encoder": ENC}, "data": {"train": [str(word_folder)]}},
    )
    assert main(["train", recipe, "--output", str(tmp_path / "bad")]) == 1
    assert "model.teacher" in capsys.readouterr().err
    recipe = _recipe(tmp_path, "bad2", {"task": "mim", "model": {"encoder": ENC}, "data": {}})
    assert main(["train", recipe, "--output", str(tmp_path / "bad2")]) == 1
    assert "data.train" in capsys.readouterr().err
