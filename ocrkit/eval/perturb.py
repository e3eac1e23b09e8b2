"""Scale-robustness perturbations (MNSP paper, Table 6 and Fig. 4).

* :func:`split_by_area` halves a set into its smaller and larger images by original area
  (Table 6: accuracy on small vs. large originals).
* :func:`shrink_pad` shrinks an image by a factor (0.5 in Fig. 4) and pastes it onto a black
  canvas of the original size, so the text covers a quarter of the input after resizing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np


def shrink_pad(image: np.ndarray, scale: float = 0.5, anchor: str = "center") -> np.ndarray:
    """Resize ``image`` by ``scale`` and pad it back to its size with black.

    ``anchor`` places the shrunk image: ``center`` (default) or ``topleft``.
    """
    if not 0.0 < scale <= 1.0:
        raise ValueError(f"shrink scale must be in (0, 1], got {scale}")
    if anchor not in {"center", "topleft"}:
        raise ValueError(f"anchor must be 'center' or 'topleft', got {anchor!r}")
    h, w = image.shape[:2]
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    canvas = np.zeros_like(image)
    top, left = ((h - nh) // 2, (w - nw) // 2) if anchor == "center" else (0, 0)
    canvas[top : top + nh, left : left + nw] = small
    return canvas


def split_by_area(areas: Sequence[int]) -> tuple[list[int], list[int]]:
    """Indices of the smaller and the larger half by area (ties broken by index; stable).

    With an odd count the middle sample goes to the larger half.
    """
    order = sorted(range(len(areas)), key=lambda i: (areas[i], i))
    half = len(order) // 2
    return sorted(order[:half]), sorted(order[half:])


class PerturbedPredictor:
    """Applies an image perturbation before delegating to another predictor."""

    def __init__(self, predictor, perturb: Callable[[np.ndarray], np.ndarray]) -> None:
        self.predictor = predictor
        self.perturb = perturb

    def predict(self, images):
        return self.predictor.predict([self.perturb(im) for im in images])
