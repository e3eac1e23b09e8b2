"""The real trainer on a tiny Recognizer: overfitting a small batch, layer groups, CLI round trip."""

from __future__ import annotations

import cv2
import pytest
import yaml
from word_fixtures import WORDS, train_on_words, word_image

TINY_MODEL = {
    "backbone": {"name": "vit_tiny", "embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": 8},
    "decoder": {"name": "ar", "embed_dim": 32, "depth": 1, "num_heads": 2, "dropout": 0.0},
    "charset": "36",
    "max_length": 6,
    "img_size": [32, 128],
}


def test_tiny_recognizer_overfits_to_full_accuracy(tmp_path):
    from ocrkit.models import Recognizer

    state = train_on_words(TINY_MODEL, tmp_path, lr=3e-3, warmup_steps=10, eval_every=75)
    assert state.best_metric == 100.0
    predictions = Recognizer.from_pretrained(tmp_path / "final").predict(
        [word_image(w) for w in WORDS]
    )
    assert [p.text for p in predictions] == WORDS


def test_recognizer_layer_decay_groups_follow_backbone_blocks():
    from ocrkit.models import Recognizer
    from ocrkit.train.optim import param_groups

    cfg = {**TINY_MODEL, "backbone": {**TINY_MODEL["backbone"], "depth": 2}}
    groups = param_groups(Recognizer.from_config(cfg), lr=1.0, weight_decay=0.1, layer_decay=0.5)
    scale = {n: g["lr_scale"] for g in groups for n in g["param_names"]}
    assert scale["backbone.cls_token"] == 0.125
    assert scale["backbone.blocks.0.attn.qkv.weight"] == 0.25
    assert scale["backbone.blocks.1.attn.qkv.weight"] == 0.5
    assert scale["decoder.pos_embed"] == 1.0
    assert scale["decoder.head.weight"] == 1.0


@pytest.fixture
def word_folder(tmp_path):
    root = tmp_path / "words"
    (root / "images").mkdir(parents=True)
    lines = []
    for i, word in enumerate(WORDS * 3):
        cv2.imwrite(str(root / "images" / f"{i}.png"), word_image(word)[:, :, ::-1])
        lines.append(f"images/{i}.png\t{word}")
    (root / "labels.tsv").write_text("\n".join(lines) + "\n")
    return root


def test_cli_train_then_recognize(tmp_path, word_folder, capsys):
    from ocrkit.cli import main

    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "task": "str",
                "model": TINY_MODEL,
                "data": {
                    "protocol": "parseq36",
                    "augment": "abinet",
                    "train": [{"path": str(word_folder), "holdout": 4}],
                },
                "train": {
                    "max_steps": 3,
                    "batch_size": 4,
                    "lr": 1e-3,
                    "save_every": 2,
                    "log_every": 1,
                    "trackers": ["tensorboard"],
                },
            }
        )
    )
    out = tmp_path / "run"
    assert main(["train", str(recipe), "train.lr=3e-4", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "lr: 0.0003" in printed and "# train_samples: 8" in printed
    for name in ("config.json", "model.safetensors", "charset.json"):
        assert (out / "final" / name).is_file()
        assert (out / "best" / name).is_file()
    assert (out / "config.yaml").is_file() and (out / "metrics.jsonl").is_file()
    assert any(out.rglob("events.out.tfevents*"))  # TensorBoard through Accelerate
    image = word_folder / "images" / "0.png"
    assert main(["recognize", "--model", str(out / "final"), str(image)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{image}\t")
    # an existing run is never silently restarted; --resume auto continues it
    assert main(["train", str(recipe), "--output", str(out)]) == 1
    assert "--resume auto" in capsys.readouterr().err
    assert (
        main(["train", str(recipe), "train.max_steps=4", "--output", str(out), "--resume", "auto"])
        == 0
    )
    state = yaml.safe_load((out / "final" / "trainer_state.json").read_text())
    assert state["global_step"] == 4


def test_cli_errors_name_the_key(tmp_path, capsys):
    from ocrkit.cli import main

    recipe = tmp_path / "r.yaml"
    recipe.write_text("task: str\ntrian: {}\n")
    assert main(["train", str(recipe)]) == 1
    assert "trian: unknown. Did you mean train?" in capsys.readouterr().err
    recipe.write_text("task: str\ntrain: {lr: 1}\n")
    assert main(["train", str(recipe), "train.lrr=2"]) == 1
    assert "Did you mean lr" in capsys.readouterr().err
