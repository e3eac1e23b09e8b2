"""The T2R matcher: predicted regions to target regions, one-to-one at an IoU threshold.

Section 4 of the Q-Mask paper scores Text-to-Region like scene-text detection: a prediction is a
true positive when it overlaps a not-yet-matched target with IoU >= 0.5; every target is matched
at most once and every prediction at most once (greedy). Two greedy orders are offered:

* ``"iou"`` (default): all (prediction, target) pairs sorted by IoU, highest first; ties broken
  by target index, then prediction index. The result does not depend on the order the model
  listed its boxes in.
* ``"icdar"``: the ICDAR 2015 (RRC) script's order: targets by index, each taking the first
  unmatched prediction over the threshold. The RRC script compares with ``>``; pass
  ``strict=True`` to reproduce it exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ocrkit.tabench.geometry import iou_matrix
from ocrkit.tabench.schema import Shape

MatchOrder = Literal["iou", "icdar"]
IOU_THRESHOLD = 0.5


@dataclass(frozen=True)
class MatchResult:
    """Counts for one query and the matched ``(prediction, target)`` index pairs."""

    tp: int
    fp: int
    fn: int
    pairs: tuple[tuple[int, int], ...] = ()


def match_regions(
    preds: Sequence[Shape],
    targets: Sequence[Shape],
    threshold: float = IOU_THRESHOLD,
    order: MatchOrder = "iou",
    strict: bool = False,
) -> MatchResult:
    """Match predicted shapes to target shapes one-to-one; see the module docstring."""
    iou = iou_matrix(preds, targets)
    ok = iou > threshold if strict else iou >= threshold
    pairs: list[tuple[int, int]] = []
    used_p: set[int] = set()
    used_t: set[int] = set()
    if order == "icdar":
        for t in range(len(targets)):
            for p in range(len(preds)):
                if p not in used_p and ok[p, t]:
                    pairs.append((p, t))
                    used_p.add(p)
                    used_t.add(t)
                    break
    elif order == "iou":
        cand = np.argwhere(ok)
        ranked = sorted(cand.tolist(), key=lambda pt: (-iou[pt[0], pt[1]], pt[1], pt[0]))
        for p, t in ranked:
            if p not in used_p and t not in used_t:
                pairs.append((p, t))
                used_p.add(p)
                used_t.add(t)
    else:
        raise ValueError(f"unknown match order {order!r}; expected 'iou' or 'icdar'")
    tp = len(pairs)
    return MatchResult(tp=tp, fp=len(preds) - tp, fn=len(targets) - tp, pairs=tuple(pairs))


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall and F1 in percent; 0 where a denominator is 0."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return 100.0 * p, 100.0 * r, 100.0 * f1
