"""Score a predictor or a predictions file on one or more STR sets under a named protocol."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ocrkit.eval.perturb import split_by_area
from ocrkit.eval.report import EvalReport, SampleResult
from ocrkit.text.metrics import SetMetrics, normalized_edit_distance
from ocrkit.text.protocols import LabelProtocol, get_protocol
from ocrkit.types import Predictor, Sample
from ocrkit.utils.progress import progress


def evaluate(
    predictor: Predictor,
    datasets: Mapping[str, object],
    protocol: str | LabelProtocol = "parseq36",
    batch_size: int = 64,
    source: str = "",
    exclude_unreadable: bool = False,
) -> EvalReport:
    """Run ``predictor`` over every set and score it.

    Each dataset yields :class:`~ocrkit.types.Sample` (or ``None`` for an unreadable or missing
    image). An unreadable image scores as a wrong (empty) prediction and is counted, so the
    figure is on the whole set; ``exclude_unreadable=True`` leaves them out instead (the report
    says so). Labels go through ``protocol.normalize_label``; dropped labels are counted by
    reason, never scored. Every readable crop is read, in batches of ``batch_size`` in aspect-ratio
    order (:func:`read_in_width_order`).
    """
    protocol = get_protocol(protocol)
    report = _new_report(protocol, datasets, source)
    report.exclude_unreadable = exclude_unreadable
    for name, dataset in datasets.items():
        metrics = report.sets[name]
        with progress(total=len(dataset), desc=f"eval {name}", unit="img") as bar:  # type: ignore[arg-type]
            for start, window in windows(dataset, max(batch_size, WINDOW)):
                readable = [sample for sample in window if sample is not None]
                bar.update(len(window) - len(readable))
                # every readable crop is read, whatever the protocol drops: the batches, and so
                # a variable-width model's readings, are then the same under every protocol
                predictions = iter(
                    read_in_width_order(predictor, [s.image for s in readable], batch_size, bar)
                )
                for offset, sample in enumerate(window):
                    if sample is None:
                        _unreadable(report, metrics, protocol, dataset, start + offset)
                        continue
                    pred = next(predictions)
                    target, reason = protocol.normalize_label(sample.label)
                    if target is None:
                        report.dropped[name][reason] += 1
                        continue
                    _score(
                        report,
                        metrics,
                        protocol,
                        sample.key,
                        sample.label,
                        target,
                        pred.text,
                        pred.confidence,
                    )
    return report


def _unreadable(
    report: EvalReport, metrics: SetMetrics, protocol: LabelProtocol, dataset, i: int
) -> None:
    """Sample ``i`` could not be read: count it, and unless excluded score it as wrong."""
    labels = getattr(dataset, "labels", None)
    label = labels[i] if labels is not None else None
    key = _key_of(dataset, i)
    if labels is not None:
        target, reason = protocol.normalize_label(label)
        if target is None:  # its label would have been dropped anyway
            report.dropped[metrics.name][reason] += 1
            return
    else:
        target = None  # a set that cannot name its labels without the image
    report.skipped[metrics.name] += 1
    if report.exclude_unreadable:
        return
    if target is None:  # wrong, at the largest distance, whatever the label was
        metrics.samples += 1
        metrics.ned_sum += 1.0
        return
    _score(report, metrics, protocol, key, label, target, "", 0.0)


def evaluate_predictions(
    predictions: Mapping[str, Mapping[str, tuple[str, float | None]]],
    datasets: Mapping[str, object],
    protocol: str | LabelProtocol = "parseq36",
    source: str = "",
) -> EvalReport:
    """Score predictions ``{set name: {key: (text, confidence)}}`` against each set's labels.

    Keys are the sample keys of a set (image paths relative to the set directory). A sample
    without a prediction scores as an empty prediction and is counted as missing.
    """
    protocol = get_protocol(protocol)
    report = _new_report(protocol, datasets, source)
    for name, dataset in datasets.items():
        metrics = report.sets[name]
        set_predictions = predictions.get(name, {})
        for key, label in iter_labels(dataset):
            target, reason = protocol.normalize_label(label)
            if target is None:
                report.dropped[name][reason] += 1
                continue
            if key not in set_predictions:
                report.missing[name] += 1
            text, confidence = set_predictions.get(key, ("", None))
            _score(report, metrics, protocol, key, label, target, text, confidence)
    return report


def iter_labels(dataset) -> Iterator[tuple[str, str | None]]:
    """``(key, label)`` of every sample, without decoding images where the dataset allows."""
    if hasattr(dataset, "keys") and hasattr(dataset, "labels"):
        yield from zip(dataset.keys, dataset.labels)
        return
    for i in range(len(dataset)):
        sample = dataset[i]
        if sample is not None:
            yield sample.key, sample.label


def area_split(dataset) -> dict[str, list[int]]:
    """Indices of the ``small`` and ``large`` halves of a set by original image area."""
    areas, indices = [], []
    for i in range(len(dataset)):
        sample = dataset[i]
        if sample is None:
            continue
        image = np.asarray(sample.image)
        areas.append(int(image.shape[0] * image.shape[1]))
        indices.append(i)
    small, large = split_by_area(areas)
    return {"small": [indices[i] for i in small], "large": [indices[i] for i in large]}


def _key_of(dataset, i: int) -> str:
    """The key of sample ``i`` without building every key (``StrDataset.keys`` is a new list)."""
    if hasattr(dataset, "raw_index") and hasattr(dataset, "_key"):
        return dataset._key(dataset.raw_index(i))
    keys = getattr(dataset, "keys", None)
    return keys[i] if keys is not None else f"#{i}"


def _score(
    report: EvalReport,
    metrics: SetMetrics,
    protocol: LabelProtocol,
    key: str,
    label: str | None,
    target: str,
    text: str,
    confidence: float | None,
) -> None:
    normalized = protocol.normalize_prediction(text)
    correct = metrics.update(normalized, target, confidence)
    report.samples.append(
        SampleResult(
            set=metrics.name,
            key=key,
            label=label or "",
            prediction=text,
            target=target,
            normalized_prediction=normalized,
            correct=correct,
            ned=normalized_edit_distance(normalized, target),
            confidence=confidence,
        )
    )


def _new_report(protocol: LabelProtocol, datasets: Mapping[str, object], source: str) -> EvalReport:
    report = EvalReport(
        protocol=protocol.name, protocol_description=protocol.describe(), source=source
    )
    for name, dataset in datasets.items():
        report.sets[name] = SetMetrics(name)
        report.dropped[name] = Counter(getattr(dataset, "dropped", {}) or {})
    return report


WINDOW = 4096  # samples read, then put in aspect-ratio order, at a time


def windows(dataset, size: int = WINDOW) -> Iterator[tuple[int, Sequence[Sample | None]]]:
    """``(start, samples)`` of ``size`` consecutive samples: what is width-ordered at a time."""
    n = len(dataset)
    for start in range(0, n, size):
        yield start, [dataset[i] for i in range(start, min(n, start + size))]


def read_in_width_order(
    predictor: Predictor, images: Sequence[np.ndarray], batch_size: int, bar: Any = None
) -> list:
    """``predictor.predict`` on batches of ``batch_size`` in aspect-ratio order, results in input
    order: variable-width models pad a batch to its widest crop, so a set is read as
    ``Recognizer.predict`` and the PP-OCR pipelines read a list (whatever the set's order),
    and the figure does not depend on how the set happens to be sorted."""
    from ocrkit.data.transforms import aspect_ratio_order

    order = aspect_ratio_order(images)
    out: list = [None] * len(images)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        for i, pred in zip(index, predictor.predict([images[i] for i in index])):
            out[i] = pred
        if bar is not None:
            bar.update(len(index))
    return out
