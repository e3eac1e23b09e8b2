"""Run a bench through an :class:`~ocrkit.tabench.local.Answerer` with a bounded pool.

At most ``workers`` queries are in flight. Every answer is appended to the response cache the
moment it arrives, so a killed run resumes where it stopped and asks nothing twice; queries
that failed (after the client's retries) are counted and left out of the cache, so the next run
asks them again. The predictions file is written atomically at the end.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocrkit.tabench.cache import ResponseCache
from ocrkit.tabench.jsonl import line_list
from ocrkit.tabench.local import Answerer
from ocrkit.tabench.schema import Query
from ocrkit.utils.io import atomic_write_text
from ocrkit.utils.progress import progress

log = logging.getLogger(__name__)


@dataclass
class RunStats:
    total: int = 0
    cached: int = 0
    answered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def sample_queries(queries: Sequence[Query], limit: int, seed: int = 42) -> list[Query]:
    """``limit`` queries spread over every (category, direction), drawn with ``seed``.

    Each stratum is shuffled with ``random.Random(seed)`` and the strata are taken in turn
    (sorted), so a smoke test of N queries sees every category and both directions as far as N
    allows. The bench's order is kept.
    """
    if limit >= len(queries):
        return list(queries)
    rng = random.Random(seed)
    strata: dict[tuple[str, str], list[int]] = {}
    for i, q in enumerate(queries):
        strata.setdefault((q.category, q.task), []).append(i)
    pools = [strata[k] for k in sorted(strata)]
    for pool in pools:
        rng.shuffle(pool)
    picked: list[int] = []
    while len(picked) < limit:
        for pool in pools:
            if pool and len(picked) < limit:
                picked.append(pool.pop())
    return [queries[i] for i in sorted(picked)]


def cache_path_for(out: str | Path) -> Path:
    """Where the response cache of a predictions file lives (beside it)."""
    out = Path(out)
    return out.with_name(out.name + ".cache.jsonl")


def run_bench(
    queries: Sequence[Query],
    answerer: Answerer,
    out: str | Path,
    workers: int = 8,
    cache: str | Path | None = None,
    show_progress: bool | None = None,
) -> tuple[dict[str, dict[str, Any]], RunStats]:
    """Answer every query (cache first), write predictions JSONL to ``out``; return both.

    Before the first query is asked, ``answerer.check()`` runs once: a dead endpoint is one clear
    error, not every query retried against it.
    """
    store = ResponseCache(cache or cache_path_for(out))
    if store.bad_lines:
        log.warning(
            "%s: skipped %d bad cache line(s) (%s); their queries are asked again",
            store.path,
            store.bad_lines,
            line_list(store.bad_line_numbers),
        )
    stats = RunStats(total=len(queries))
    keys = {q.id: answerer.key(q) for q in queries}
    todo = [q for q in queries if keys[q.id] not in store]
    if todo:
        answerer.check()
    stats.cached = len(queries) - len(todo)
    kwargs: dict[str, Any] = {"total": len(queries), "initial": stats.cached, "unit": "q"}
    if show_progress is not None:
        kwargs["disable"] = not show_progress
    bar = progress(desc=f"tabench {answerer.name}", **kwargs)
    pending: dict[Future, Query] = {}
    todo_iter = iter(todo)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        try:
            while True:
                while len(pending) < max(1, workers):
                    q = next(todo_iter, None)
                    if q is None:
                        break
                    pending[pool.submit(answerer.answer, q)] = q
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    q = pending.pop(fut)
                    try:
                        answer = fut.result()
                    except Exception as exc:  # one failed query never stops the run
                        stats.failed += 1
                        stats.errors.append(f"{q.id}: {exc}")
                        log.warning("query %s failed: %s", q.id, exc)
                    else:
                        store.put(keys[q.id], {"id": q.id, **answer})
                        stats.answered += 1
                    bar.update(1)
        finally:
            for fut in pending:
                fut.cancel()
            bar.close()
    predictions: dict[str, dict[str, Any]] = {}
    for q in queries:
        entry = store.get(keys[q.id])
        if entry is not None:
            answer = {k: v for k, v in entry.items() if k not in ("key", "id")}
            predictions[q.id] = answerer.to_prediction(q, answer)
    lines = [json.dumps(p, ensure_ascii=False) for p in predictions.values()]
    atomic_write_text(out, "\n".join(lines) + ("\n" if lines else ""))
    return predictions, stats
