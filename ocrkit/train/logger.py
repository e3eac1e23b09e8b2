"""Run logging: progress bar, Accelerate trackers (TensorBoard) and ``metrics.jsonl``.

Every process calls :meth:`RunLogger.step` (the window means are averaged across processes);
only the main process writes. ``metrics.jsonl`` holds one JSON object per logged step.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ocrkit.utils.io import atomic_write_text
from ocrkit.utils.progress import progress

log = logging.getLogger("ocrkit.train")


@contextmanager
def fork_all_rngs() -> Iterator[None]:
    """Run the body without changing python/numpy/torch RNG states (evaluation, hooks)."""
    py, np_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(np_state)


def truncate_metrics(path: Path, step: int) -> None:
    """Drop the lines of ``path`` after ``step`` (and any torn line) so a resumed run that
    logs those steps again leaves one line per step; atomic, untouched when nothing changes."""
    if not path.is_file():
        return
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
            keep = isinstance(record, dict) and int(record["step"]) <= step
        except (ValueError, KeyError, TypeError):
            keep = False
        if keep:
            kept.append(line)
        else:
            dropped += 1
    if dropped:
        atomic_write_text(path, "".join(f"{line}\n" for line in kept))
        log.info("metrics.jsonl: dropped %d lines after step %d", dropped, step)


class RunLogger:
    """Window averages of training scalars, sent to trackers, a JSONL file and the bar."""

    def __init__(self, accelerator: Any, output_dir: Path, total_steps: int) -> None:
        self.acc, self.output_dir, self.total_steps = accelerator, Path(output_dir), total_steps
        self.main = accelerator.is_main_process
        self.window: dict[str, float] = {}
        self.count = 0
        self.bar = None
        self.t0 = time.monotonic()
        self.window_start_step = 0

    def start(self, step: int) -> None:
        """Begin at ``step``: ``metrics.jsonl`` keeps only the lines up to it (a resume)."""
        self.window_start_step = step
        if self.main:
            truncate_metrics(self.output_dir / "metrics.jsonl", step)
        self.t0 = time.monotonic()
        if self.main:
            self.bar = progress(total=self.total_steps, initial=step, desc="train", unit="step")

    def step(self, outputs: Mapping[str, float], state: Any, optimizer: Any, every: int) -> None:
        for k, v in outputs.items():
            self.window[k] = self.window.get(k, 0.0) + v
        self.count += 1
        if self.bar is not None:
            self.bar.update(1)
        if state.global_step % every and state.global_step != self.total_steps:
            return
        keys = sorted(self.window)
        values = torch.tensor([self.window[k] / self.count for k in keys], device=self.acc.device)
        if self.acc.num_processes > 1:
            values = self.acc.reduce(values, reduction="mean")
        now = time.monotonic()
        steps = state.global_step - self.window_start_step
        metrics = {f"train/{k}": float(v) for k, v in zip(keys, values.tolist())}
        metrics["train/lr"] = max(g["lr"] for g in optimizer.param_groups)
        metrics["train/epoch"] = state.epoch
        metrics["train/skipped_images"] = state.skipped_images
        metrics["train/nan_skips"] = state.nan_skips
        metrics["train/sec_per_step"] = (now - self.t0) / max(1, steps)
        self.window, self.count = {}, 0
        self.t0, self.window_start_step = now, state.global_step
        if self.bar is not None:
            self.bar.set_postfix(
                loss=f"{metrics.get('train/loss', float('nan')):.4f}",
                lr=f"{metrics['train/lr']:.2e}",
            )
        self.log(metrics, state.global_step)

    def log(self, metrics: Mapping[str, float], step: int, echo: bool = False) -> None:
        if not self.main:
            return
        if self.acc.log_with:
            self.acc.log(dict(metrics), step=step)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with open(self.output_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")
        text = " ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
        )
        if echo or self.bar is None or self.bar.disable:
            log.info("step %d: %s", step, text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
