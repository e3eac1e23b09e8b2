"""Tiny labelled word images drawn with OpenCV, shared by the training tests."""

from __future__ import annotations

import cv2
import numpy as np

from ocrkit.types import Sample

WORDS = ["cat", "dog", "sun", "a1b2"]


def word_image(text: str) -> np.ndarray:
    """Black ``text`` on a white 32x128 RGB image."""
    img = np.full((32, 128, 3), 255, np.uint8)
    cv2.putText(img, text, (4, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2)
    return img


class Words:
    """Labelled word images; ``transform`` set -> tensors for training, else raw arrays."""

    def __init__(self, transform=None, words: list[str] = WORDS) -> None:
        self.samples = [Sample(word_image(w), w, f"{i}.png") for i, w in enumerate(words)]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Sample:
        s = self.samples[i]
        image = self.transform(s.image) if self.transform else s.image
        return Sample(image, s.label, s.key)


def train_on_words(model_config: dict, output, **train_options):
    """Train ``Recognizer.from_config(model_config)`` on :data:`WORDS` through the real trainer.

    Evaluates on the same words (parseq36) so ``state.best_metric`` is the word accuracy; the
    ``train_options`` override the TrainConfig defaults used here (150 steps, batch 4, cosine).
    """
    import torch

    from ocrkit.data import collate_samples
    from ocrkit.models import Recognizer
    from ocrkit.train import TrainConfig, Trainer
    from ocrkit.train.tasks import make_eval_fn

    torch.manual_seed(0)
    options = dict(
        seed=0, max_steps=150, batch_size=4, weight_decay=0.0, schedule="cosine",
        log_every=50, save_every=0, trackers=[],
    )  # fmt: skip
    options.update(train_options)
    model = Recognizer.from_config(model_config)
    eval_fn = make_eval_fn({"words": Words()}, "parseq36")
    trainer = Trainer(
        model, Words(model.transform), TrainConfig(**options), output, collate_samples,
        eval_fn,
    )  # fmt: skip
    return trainer.fit()


def write_word_set(folder, words: list[str]):
    """A folder dataset (``images/i.png`` + ``labels.tsv``) of rendered ``words``; returns it."""
    from pathlib import Path

    folder = Path(folder)
    (folder / "images").mkdir(parents=True)
    lines = []
    for i, word in enumerate(words):
        cv2.imwrite(str(folder / "images" / f"{i}.png"), word_image(word)[..., ::-1])
        lines.append(f"images/{i}.png\t{word}")
    (folder / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
