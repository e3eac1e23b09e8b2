"""STR metrics: word accuracy, 1-NED and mean confidence, per set and combined.

NED follows the common definition (PARSeq, OpenOCR): edit distance divided by the longer of the
two strings, 0 when both are empty. Reports give accuracy and 1-NED in percent. The combined
figure is sample-weighted: every sample of every set counts once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein


def edit_distance(a: str, b: str) -> int:
    return Levenshtein.distance(a, b)


def normalized_edit_distance(prediction: str, target: str) -> float:
    longest = max(len(prediction), len(target))
    return edit_distance(prediction, target) / longest if longest else 0.0


@dataclass
class SetMetrics:
    """Running totals for one evaluation set."""

    name: str
    samples: int = 0
    correct: int = 0
    ned_sum: float = 0.0
    confidence_sum: float = 0.0
    confidences: int = 0  # samples that came with a confidence

    def update(self, prediction: str, target: str, confidence: float | None = None) -> bool:
        """Add one sample (both strings already normalized); return whether it was correct.
        ``confidence`` None (a predictions file without that column) is left out of the mean."""
        ok = prediction == target
        self.samples += 1
        self.correct += int(ok)
        self.ned_sum += normalized_edit_distance(prediction, target)
        if confidence is not None:
            self.confidence_sum += confidence
            self.confidences += 1
        return ok

    @property
    def accuracy(self) -> float:
        """Word accuracy in percent."""
        return 100.0 * self.correct / self.samples if self.samples else 0.0

    @property
    def one_minus_ned(self) -> float:
        """1 - mean NED, in percent."""
        return 100.0 * (1.0 - self.ned_sum / self.samples) if self.samples else 0.0

    @property
    def mean_confidence(self) -> float | None:
        """Mean over the samples that came with a confidence; None when none did."""
        return self.confidence_sum / self.confidences if self.confidences else None

    def as_dict(self) -> dict:
        return {
            "samples": self.samples,
            "correct": self.correct,
            "accuracy": round(self.accuracy, 4),
            "ned": round(self.one_minus_ned, 4),
            "confidence": None if self.mean_confidence is None else round(self.mean_confidence, 6),
        }


def combine(sets: Iterable[SetMetrics], name: str = "combined") -> SetMetrics:
    """Sample-weighted union of several sets."""
    total = SetMetrics(name)
    for s in sets:
        total.samples += s.samples
        total.correct += s.correct
        total.ned_sum += s.ned_sum
        total.confidence_sum += s.confidence_sum
        total.confidences += s.confidences
    return total


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value for two readers scored on the same samples.

    ``only_a`` / ``only_b``: samples only reader A / only reader B reads correctly (the
    discordant pairs; the ones both get right or both get wrong say nothing about which is
    better). Under "equally good" each discordant sample is a fair coin, so the p-value is
    twice the binomial tail of the smaller count, capped at 1 (McNemar 1947; the exact form
    suits the few disagreements of two strong readers, where the chi-square form is poor).
    """
    if only_a < 0 or only_b < 0:
        raise ValueError(f"counts must be >= 0, got {only_a}, {only_b}")
    n = only_a + only_b
    tail = sum(math.comb(n, k) for k in range(min(only_a, only_b) + 1))
    return min(1.0, (2 * tail) / 2**n)  # exact integers: no overflow for thousands of pairs
