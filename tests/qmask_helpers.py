"""Shared builders for the Q-Mask tests: tiny processors cached per session, one image + query."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

BOX = [14, 44, 96, 70]
R2T = "What is the text at location [14, 44, 96, 70]?"


def word_image(text: str = "OPEN", size: tuple[int, int] = (112, 112)) -> np.ndarray:
    img = np.full((size[1], size[0], 3), 235, np.uint8)
    cv2.putText(img, text, (14, 66), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (20, 20, 20), 2)
    return img


def sample(
    image: np.ndarray, question: str, answer: str | None, mask: np.ndarray | None, prior: str = ""
) -> dict:
    return {
        "images": [image],
        "prompt": prior + question,
        "question": question,
        "answer": answer,
        "masks": [mask],
    }


def tiny_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp() / "qmask-tiny-processors"
