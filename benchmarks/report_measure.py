"""The measurements of ``benchmarks/report.py``: one predict function's readings of the sets,
scored under every protocol, and the speeds of all rows, timed in interleaved rounds."""

from __future__ import annotations

import functools
import itertools
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from report_page import BATCH

from ocrkit.types import Prediction
from ocrkit.utils.timing import time_calls

PROTOCOLS = ("parseq36", "cased62", "full94")
PredictFn = Callable[[Sequence[np.ndarray]], list[Prediction]]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class LabelView:
    """The keys and labels of a set without the unreadable images, for ``evaluate_predictions``."""

    keys: list[str]
    labels: list[str | None]
    dropped: Mapping[str, int]


def predict_sets(predict: PredictFn, datasets: Mapping[str, Any]) -> tuple[dict, dict]:
    """``({set: {key: (text, confidence)}}, {set: [keys of unreadable images]})``, read as
    ``ocrkit eval`` reads a set: batches of 64 in aspect-ratio order
    (:func:`ocrkit.eval.evaluator.read_in_width_order`)."""
    from types import SimpleNamespace

    from ocrkit.eval.evaluator import read_in_width_order, windows
    from ocrkit.utils.progress import progress

    predictor = SimpleNamespace(predict=predict)
    predictions: dict[str, dict[str, tuple[str, float]]] = {}
    unreadable: dict[str, list[str]] = {}
    for name, dataset in datasets.items():
        predictions[name], unreadable[name] = {}, []
        keys = list(dataset.keys)  # the keys evaluate_predictions matches on
        with progress(total=len(dataset), desc=name, unit="img") as bar:
            for start, samples in windows(dataset):
                batch = list(zip(keys[start : start + len(samples)], samples))
                unreadable[name] += [k for k, s in batch if s is None]
                kept = [(k, s) for k, s in batch if s is not None]
                bar.update(len(batch) - len(kept))
                images = [s.image for _, s in kept]
                for (k, _), p in zip(kept, read_in_width_order(predictor, images, BATCH, bar)):
                    predictions[name][k] = (p.text, float(p.confidence))
    return predictions, unreadable


def score(
    predictions: Mapping[str, Mapping[str, tuple[str, float]]],
    datasets: Mapping[str, Any],
    unreadable: Mapping[str, Sequence[str]] | None = None,
    protocols: Sequence[str] = PROTOCOLS,
    correct: dict[str, set[tuple[str, str]]] | None = None,
) -> dict[str, dict]:
    """``{protocol: EvalReport.to_dict()}``; unreadable images are excluded and counted (as
    ``ocrkit eval --exclude-unreadable``; the JSON says ``"unreadable_images": "excluded"``).
    ``correct``, when given, receives ``{protocol: {(set, key) read correctly}}`` (for the
    paired comparison with the reference row)."""
    from ocrkit.eval import evaluate_predictions

    views = {}
    for name, dataset in datasets.items():
        bad = set((unreadable or {}).get(name, ()))
        pairs = [(k, lab) for k, lab in zip(dataset.keys, dataset.labels) if k not in bad]
        views[name] = LabelView(
            [k for k, _ in pairs], [lab for _, lab in pairs], getattr(dataset, "dropped", {})
        )
    out = {}
    for protocol in protocols:
        report = evaluate_predictions(predictions, views, protocol)
        report.exclude_unreadable = True
        for name in views:
            report.skipped[name] = len((unreadable or {}).get(name, ()))
        out[protocol] = report.to_dict()
        if correct is not None:
            correct[protocol] = {(r.set, r.key) for r in report.samples if r.correct}
    return out


@dataclass
class Timer:
    """What the speed phase times for one row: its predict function and where the result goes."""

    label: str  # "name [backend]", for the log
    predict: PredictFn
    row: dict


SETTLE_S = 0.25  # idle time before each row's calls in a round


def measure_speeds(timers: Sequence[Timer], images: Sequence[np.ndarray], repeats: int) -> None:
    """Median latency of one image at batch 1 (cycling over ``images``) and images/s at batch 64
    of every timer, written into its row as ``"speed"``.

    The rows are timed in interleaved rounds (each round times every row once at batch 1 and once
    at batch 64, after one warm-up call each), not one row after the other: a slow drift of the
    machine over a long run (other load, clock changes) then reaches every row alike instead of
    the rows measured while it lasts, and the ratios against the reference stay fair. Each row's
    calls wait ``SETTLE_S`` first: ONNX Runtime's worker threads spin for a while after a call,
    and without the pause they take the cores from the row timed next (measured: a PyTorch row
    timed right after an ONNX Runtime one read 2x slower at batch 1).
    """
    from ocrkit.utils.progress import progress

    batch = list(images[:BATCH])
    cycles = [itertools.cycle(images) for _ in timers]
    for timer in timers:  # warm-up: first-call allocations and lazy initialization
        timer.predict(batch[:1])
        timer.predict(batch)
    latency: list[list[float]] = [[] for _ in timers]
    throughput: list[list[float]] = [[] for _ in timers]
    with progress(total=repeats * len(timers), desc="speed", unit="row") as bar:
        for _ in range(repeats):
            for i, timer in enumerate(timers):
                time.sleep(SETTLE_S)
                single = functools.partial(timer.predict, [next(cycles[i])])
                latency[i] += time_calls(single, 1, warmup=False)
                throughput[i] += time_calls(
                    functools.partial(timer.predict, batch), 1, warmup=False
                )
                bar.update(1)
    for i, timer in enumerate(timers):
        speed = {
            "latency_b1_s": statistics.median(latency[i]),
            "throughput_b64": len(batch) / statistics.median(throughput[i]),
            "batch": len(batch),
        }
        timer.row["speed"] = speed
        log(
            f"  {timer.label}: {speed['latency_b1_s'] * 1e3:.1f} ms/img at batch 1, "
            f"{speed['throughput_b64']:.1f} img/s at batch {speed['batch']}"
        )
