"""Wall-clock timing for benchmarks: the median of repeated calls, after a warm-up."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def time_calls(
    fn: Callable[[], object], repeats: int, device: str = "cpu", warmup: bool = True
) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn`` (after one untimed call if ``warmup``).

    For a CUDA ``device`` every call is followed by a synchronization, so queued kernels count.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")

    def sync() -> None:
        if str(device).startswith("cuda"):
            import torch

            torch.cuda.synchronize(device)

    if warmup:
        fn()
        sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def timed(
    fn: Callable[[], object], repeats: int, device: str = "cpu", warmup: bool = True
) -> float:
    """Median seconds of ``fn`` over ``repeats`` runs (after one warm-up run if ``warmup``)."""
    return statistics.median(time_calls(fn, repeats, device, warmup))
