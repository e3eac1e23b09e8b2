"""Same recipe, same seed, two fresh processes: bit-identical weights (issue 14 item 1).

Before the fix ``ocrkit train`` built the model before the trainer seeded, so the two runs
started from different random weights.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import torch
import yaml
from safetensors.torch import load_file
from word_fixtures import WORDS, word_image

MODEL = {
    "backbone": {"name": "vit_tiny", "embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": 8},
    "decoder": {"name": "ar", "embed_dim": 32, "depth": 1, "num_heads": 2},
    "charset": "36",
    "max_length": 6,
}


def _train(recipe: Path, out: Path) -> dict[str, torch.Tensor]:
    env = {**os.environ, "OCRKIT_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "ocrkit", "train", str(recipe), "--output", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return load_file(str(out / "final" / "model.safetensors"))


def test_two_processes_with_one_seed_end_with_identical_weights(tmp_path: Path) -> None:
    root = tmp_path / "words"
    (root / "images").mkdir(parents=True)
    lines = []
    for i, word in enumerate(WORDS * 3):
        cv2.imwrite(str(root / "images" / f"{i}.png"), word_image(word)[:, :, ::-1])
        lines.append(f"images/{i}.png\t{word}")
    (root / "labels.tsv").write_text("\n".join(lines) + "\n")
    recipe = tmp_path / "r.yaml"
    data = {
        "protocol": "parseq36",
        "augment": "abinet",
        "train": [{"path": str(root), "holdout": 4}],
    }
    train = {"seed": 3, "max_steps": 3, "batch_size": 4, "lr": 1e-3, "trackers": []}
    recipe.write_text(yaml.safe_dump({"task": "str", "model": MODEL, "data": data, "train": train}))
    first, second = _train(recipe, tmp_path / "a"), _train(recipe, tmp_path / "b")
    assert first.keys() == second.keys() and len(first) > 10
    for key in first:
        assert torch.equal(first[key], second[key]), key
