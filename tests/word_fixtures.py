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
