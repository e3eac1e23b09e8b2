"""Evaluation reports: a printed table, JSON, CSV and per-sample TSV, always naming the protocol."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ocrkit.text.metrics import SetMetrics, combine
from ocrkit.utils.io import atomic_write_json, atomic_write_text


@dataclass
class SampleResult:
    """One scored sample: raw and normalized strings, correctness, NED and confidence."""

    set: str
    key: str
    label: str
    prediction: str
    target: str
    normalized_prediction: str
    correct: bool
    ned: float
    confidence: float | None  # None: the predictions file gave none


@dataclass
class EvalReport:
    """Per-set metrics, the combined figure and every scored sample."""

    protocol: str
    protocol_description: str
    sets: dict[str, SetMetrics] = field(default_factory=dict)
    samples: list[SampleResult] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # unreadable images per set
    exclude_unreadable: bool = False  # True: unreadable images left out, not scored as wrong
    dropped: dict[str, Counter] = field(default_factory=dict)  # labels filtered per set, by reason
    missing: Counter = field(default_factory=Counter)  # samples without a prediction, per set
    source: str = ""
    derived: set[str] = field(default_factory=set)  # halves / perturbed copies of other sets

    @property
    def combined(self) -> SetMetrics:
        """Sample-weighted over the base sets (derived views would count samples twice)."""
        return combine(m for name, m in self.sets.items() if name not in self.derived)

    def to_dict(self) -> dict:
        sets = {}
        for name, metrics in self.sets.items():
            entry = metrics.as_dict()
            entry["skipped_images"] = self.skipped.get(name, 0)  # unreadable (see top level)
            entry["dropped_labels"] = dict(self.dropped.get(name, {}))
            entry["missing_predictions"] = self.missing.get(name, 0)
            sets[name] = entry
        return {
            "protocol": self.protocol,
            "protocol_description": self.protocol_description,
            "source": self.source,
            "unreadable_images": "excluded" if self.exclude_unreadable else "scored_wrong",
            "sets": sets,
            "combined": self.combined.as_dict(),
        }

    def format_table(self) -> str:
        """A fixed-width table; accuracy and 1-NED in percent."""
        rows = [("set", "samples", "accuracy", "1-NED", "confidence")]
        for metrics in [*self.sets.values(), self.combined]:
            rows.append(
                (
                    metrics.name,
                    str(metrics.samples),
                    f"{metrics.accuracy:.2f}",
                    f"{metrics.one_minus_ned:.2f}",
                    "-" if metrics.mean_confidence is None else f"{metrics.mean_confidence:.4f}",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [f"protocol: {self.protocol_description}"]
        unreadable = sum(self.skipped.values())
        if self.exclude_unreadable:
            total = sum(m.samples for m in self.sets.values()) + unreadable
            lines.append(
                f"unreadable images EXCLUDED (--exclude-unreadable): {unreadable} of {total}"
            )
        if self.source:
            lines.append(f"source: {self.source}")
        for i, row in enumerate(rows):
            cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
            lines.append("  ".join(cells))
            if i == 0 or i == len(rows) - 2:
                lines.append("  ".join("-" * w for w in widths))
        notes = []
        for name in self.sets:
            if self.skipped.get(name):
                what = "excluded" if self.exclude_unreadable else "scored as wrong"
                notes.append(f"{name}: {self.skipped[name]} unreadable images {what}")
            if self.missing.get(name):
                notes.append(
                    f"{name}: {self.missing[name]} samples had no prediction (scored empty)"
                )
            for reason, count in sorted(self.dropped.get(name, {}).items()):
                notes.append(f"{name}: {count} labels dropped ({reason})")
        return "\n".join(lines + notes)

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["protocol", "set", "samples", "correct", "accuracy", "ned", "confidence"])
        for metrics in [*self.sets.values(), self.combined]:
            d = metrics.as_dict()
            writer.writerow(
                [self.protocol, metrics.name, d["samples"], d["correct"], d["accuracy"], d["ned"]]
                + [d["confidence"]]
            )
        return buffer.getvalue()

    def samples_tsv(self) -> str:
        """One line per scored sample; ``norm_edit_distance`` is NED itself (0 = exact), where
        the JSON's ``ned`` is the set's 1-NED in percent."""
        header = (
            "set\tkey\tlabel\tprediction\ttarget\tnormalized_prediction\tcorrect\tnorm_edit_distance\t"
            "confidence"
        )
        lines = [header]
        for s in self.samples:
            lines.append(
                f"{s.set}\t{s.key}\t{_tsv(s.label)}\t{_tsv(s.prediction)}\t{_tsv(s.target)}\t"
                f"{_tsv(s.normalized_prediction)}\t{int(s.correct)}\t{s.ned:.4f}\t{_confidence(s.confidence)}"
            )
        return "\n".join(lines) + "\n"

    def write(
        self,
        json_path: str | Path | None = None,
        csv_path: str | Path | None = None,
        samples_path: str | Path | None = None,
    ) -> None:
        if json_path:
            atomic_write_json(json_path, self.to_dict())
        if csv_path:
            atomic_write_text(csv_path, self.to_csv())
        if samples_path:
            atomic_write_text(samples_path, self.samples_tsv())


def _tsv(text: str) -> str:
    return text.replace("\t", " ").replace("\n", " ")


def _confidence(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"
