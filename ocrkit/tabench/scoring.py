"""TABench scores (Q-Mask paper, Section 4): Acc_R2T, dataset-level P/R/F1 for T2R, Overall.

* R2T: exact match after :func:`~ocrkit.tabench.normalize.normalize_r2t`; accuracy in percent.
* T2R: :func:`~ocrkit.tabench.matching.match_regions` per query, TP/FP/FN summed over all T2R
  queries, then precision, recall and F1 (dataset level, in percent).
* Overall = (Acc_R2T + F1_T2R) / 2. A direction with no valid output scores 0.

A missing prediction and an unparsable answer both score as an empty answer; they are counted
separately (``missing``, ``unparsable``) so a broken run is visible in the report.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocrkit.tabench.jsonl import iter_lines, parse_line, recover_id
from ocrkit.tabench.matching import IOU_THRESHOLD, MatchOrder, match_regions, prf
from ocrkit.tabench.normalize import normalize_r2t
from ocrkit.tabench.schema import Query


@dataclass
class Tally:
    """Running counts for one slice of the bench (whole bench, one category, ...)."""

    r2t_n: int = 0
    r2t_correct: int = 0
    r2t_valid: int = 0
    t2r_n: int = 0
    t2r_valid: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    unparsable: dict[str, int] = field(default_factory=lambda: {"r2t": 0, "t2r": 0})
    missing: dict[str, int] = field(default_factory=lambda: {"r2t": 0, "t2r": 0})
    empty: dict[str, int] = field(default_factory=lambda: {"r2t": 0, "t2r": 0})

    def summary(self) -> dict[str, Any]:
        acc = 100.0 * self.r2t_correct / self.r2t_n if self.r2t_n and self.r2t_valid else 0.0
        p, r, f1 = prf(self.tp, self.fp, self.fn) if self.t2r_valid else (0.0, 0.0, 0.0)
        return {
            "r2t": {"n": self.r2t_n, "correct": self.r2t_correct, "accuracy": acc},
            "t2r": {
                "n": self.t2r_n,
                "tp": self.tp,
                "fp": self.fp,
                "fn": self.fn,
                "precision": p,
                "recall": r,
                "f1": f1,
            },
            "overall": (acc + f1) / 2.0,
            "unparsable": dict(self.unparsable),
            "missing": dict(self.missing),
            "empty": dict(self.empty),
        }


def _valid_shape(shape: Any) -> bool:
    """A box of 4 finite numbers, or a polygon of >= 3 finite ``[x, y]`` points."""
    if not isinstance(shape, (list, tuple)) or not shape:
        return False
    if isinstance(shape[0], (list, tuple)):
        if len(shape) < 3 or any(not isinstance(p, (list, tuple)) or len(p) != 2 for p in shape):
            return False
        values = [v for p in shape for v in p]
    elif len(shape) == 4:
        values = list(shape)
    else:
        return False
    return all(_finite_number(v) for v in values)


def _finite_number(v: Any) -> bool:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:  # a 400-digit integer
        return False


def resolve_prediction(
    query: Query, record: Mapping[str, Any] | None, adapter: Any = None
) -> tuple[Any, str]:
    """The answer a record gives for ``query`` and its status.

    ``ok``; ``empty`` (a well-formed empty answer: ``""`` or ``[]``, e.g. an engine that found
    nothing); ``unparsable`` (a raw answer the adapter cannot read, a malformed record);
    ``missing``. ``text``/``boxes`` are used as given (absolute pixels); ``raw`` goes through
    ``adapter``. The answer is ``""`` / ``[]`` unless the status is ``ok``.
    """
    empty: Any = "" if query.task == "r2t" else []
    if record is None:
        return empty, "missing"
    key = "text" if query.task == "r2t" else "boxes"
    if key not in record and "raw" in record:
        if adapter is None:
            raise ValueError(
                f"prediction {query.id!r} holds a raw answer: pass --adapter to parse it"
            )
        record = adapter.parse(query, record["raw"])
    if record.get("valid") is False:
        return empty, "unparsable"
    value = record.get(key)
    if query.task == "r2t":
        if isinstance(value, str):
            return (value, "ok") if value.strip() else (empty, "empty")
        return empty, "unparsable"
    if isinstance(value, list) and all(_valid_shape(s) for s in value):
        return (value, "ok") if value else (empty, "empty")
    return empty, "unparsable"


def score(
    queries: Iterable[Query],
    predictions: Mapping[str, Mapping[str, Any]],
    adapter: Any = None,
    iou_threshold: float = IOU_THRESHOLD,
    match_order: MatchOrder = "iou",
    strict: bool = False,
) -> dict[str, Any]:
    """Score ``predictions`` (by query id) on ``queries``; returns the OUT.json contract."""
    total = Tally()
    slices: dict[str, dict[str, Tally]] = {
        "by_category": defaultdict(Tally),
        "by_language": defaultdict(Tally),
        "by_source": defaultdict(Tally),
    }
    for q in queries:
        answer, status = resolve_prediction(q, predictions.get(q.id), adapter)
        tallies = [
            total,
            slices["by_category"][q.category],
            slices["by_language"][q.language],
            slices["by_source"][q.source or "unknown"],
        ]
        for t in tallies:
            if status != "ok":
                getattr(t, status)[q.task] += 1
            if q.task == "r2t":
                t.r2t_n += 1
                t.r2t_valid += status == "ok"
                t.r2t_correct += status == "ok" and (normalize_r2t(answer) == normalize_r2t(q.text))
        if q.task == "t2r":
            m = match_regions(answer, q.boxes, iou_threshold, match_order, strict)
            for t in tallies:
                t.t2r_n += 1
                t.t2r_valid += status == "ok"
                t.tp, t.fp, t.fn = t.tp + m.tp, t.fp + m.fp, t.fn + m.fn
    result = total.summary()
    result["settings"] = {
        "iou_threshold": iou_threshold,
        "match_order": match_order,
        "comparison": ">" if strict else ">=",
    }
    for name, group in slices.items():
        result[name] = {k: group[k].summary() for k in sorted(group)}
    return result


def load_predictions(path: str | Path) -> tuple[dict[str, dict[str, Any]], list[int]]:
    """Read a predictions JSONL keyed by ``id``; returns the records and the bad line numbers.

    A line that is not a JSON object with an ``id`` (not UTF-8, not JSON, nested too deeply, a
    torn write) is a bad line: its number is returned, and when its ``id`` can still be seen the
    query gets ``{"valid": false}`` and scores as unparsable (else as missing). A later record
    for the same id replaces an earlier one.
    """
    records: dict[str, dict[str, Any]] = {}
    bad: list[int] = []
    for number, raw in iter_lines(path):
        record, _ = parse_line(raw)
        if isinstance(record, dict) and isinstance(record.get("id"), (str, int)):
            records[str(record["id"])] = record
            continue
        bad.append(number)
        qid = recover_id(raw)
        if qid is not None:
            records[qid] = {"id": qid, "valid": False, "bad_line": number}
    return records, bad
