"""Every shipped recipe loads, names a known task, has a valid train section and builds its model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from ocrkit.config import load_config, to_dataclass
from ocrkit.train.settings import TrainConfig
from ocrkit.train.tasks import TASKS, cache_options

# recipes/accelerate holds Accelerate launch configs (tests/test_train_fsdp.py), not recipes
RECIPES = sorted(
    p
    for p in (Path(__file__).resolve().parents[1] / "recipes").rglob("*.yaml")
    if p.parent.name != "accelerate"
)


def test_there_are_recipes():
    names = {p.relative_to(p.parents[1]).as_posix() for p in RECIPES}
    assert {"pretrain/mnsp_vit_small.yaml", "str/vit_tiny_ar_cpu.yaml"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipe_loads(path: Path, monkeypatch, tmp_path):
    import ocrkit.pretrain  # noqa: F401  (registers mim, mnsp)

    for name in (
        "UNION14M",
        "UNION14M_U",
        "UNION14M_FILTER",
        "PRETRAINED",
        "QMASK_BASE",
        "OCRKIT_DATA",
    ):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))  # data/model paths users set
    config = load_config(path)
    assert config["task"] in TASKS.list()
    to_dataclass(TrainConfig, config["train"], "train")
    cache_options(config)  # init.cache_frozen agrees with data.augment (ConfigError otherwise)


def test_study_recipes_share_one_encoder_and_mnsp_scales_fit_it(monkeypatch, tmp_path):
    """The MNSP study's three recipes: one encoder, three adjacent 4x scales, models that build."""
    from ocrkit.models import Recognizer

    if not os.environ.get("OCRKIT_DATA"):  # the recipes name ${OCRKIT_DATA}; only loaded here
        monkeypatch.setenv("OCRKIT_DATA", str(tmp_path))
    from ocrkit.pretrain import MNSP, MaskedImageModel

    root = RECIPES[0].parents[1]
    mim = load_config(root / "pretrain/mim_vit_tiny_cpu.yaml")
    mnsp = load_config(root / "pretrain/mnsp_vit_tiny_cpu.yaml")
    finetune = load_config(root / "str/vit_tiny_ar_cpu_finetune.yaml")
    assert mim["model"]["encoder"] == mnsp["model"]["encoder"] == finetune["model"]["backbone"]
    assert finetune["init"]["encoder"] is None
    default = load_config(root / "str/vit_tiny_ar_cpu.yaml")  # the embedded model's recipe
    assert finetune["model"] == default["model"] and finetune["data"] == default["data"]

    torch.manual_seed(0)
    teacher = MaskedImageModel.from_config(mim["model"]).encoder
    student = MNSP({**mnsp["model"], "teacher": None}, teacher=teacher)
    tokens = [g[0] * g[1] for g in student.grids]
    assert tokens == [4, 16, 64] and all(b == 4 * a for a, b in zip(tokens, tokens[1:]))
    recognizer = Recognizer.from_config(finetune["model"])
    missing = recognizer.backbone.load_state_dict(student.encoder.state_dict(), strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys
