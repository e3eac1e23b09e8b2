"""Scale-robustness perturbations (MNSP paper, Table 6 and Fig. 4).

* :func:`split_by_area` halves a set into its smaller and larger images by original area
  (Table 6: accuracy on small vs. large originals).
* :func:`shrink_pad` shrinks an image by a factor (0.5 in Fig. 4) and pastes it onto a black
  canvas of the original size, so the text covers a quarter of the input after resizing. It
  lives in :mod:`ocrkit.data.transforms` (training uses it too: ``data.shrink_pad``, Fig. 4
  fine-tunes on the same corpus) and is re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ocrkit.data.transforms import shrink_pad

__all__ = ["PerturbedPredictor", "shrink_pad", "split_by_area"]


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
