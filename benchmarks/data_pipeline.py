"""Data pipeline throughput: LMDB read + StrAugment + StrTransform through a DataLoader.

Builds a temporary LMDB (rendered words if the renderer works, else the shared IIIT5K/SVT crops,
else noise images), then prints images/s for ``num_workers`` 0, 1, 2 with the ratio to 0 workers
measured in the same run, plus the renderer's own images/s, and the hardware.

    .venv/bin/python benchmarks/data_pipeline.py --samples 2000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from ocrkit.data import StrTransform, collate_samples, encode_image, open_dataset, write_lmdb
from ocrkit.data.transforms import Compose
from ocrkit.utils.hardware import cpu_model
from ocrkit.utils.paths import shared_data_dir


def rendered_samples(n: int):
    """(png bytes, label) from the renderer, and its images/s; None when it is unavailable."""
    try:
        from ocrkit.data.render import WordRenderer

        renderer = WordRenderer(seed=0)
    except Exception as exc:  # the renderer is optional here
        print(f"renderer unavailable ({type(exc).__name__}: {exc})")
        return None, None
    start = time.perf_counter()
    out = []
    for i in range(n):
        image, text = renderer.sample(i)
        out.append((encode_image(image, ".png"), text))
    rate = n / (time.perf_counter() - start)
    return out, rate


def shared_samples(n: int):
    root = shared_data_dir()
    if root is None:
        return None
    ds = open_dataset([root / "str" / s for s in ("iiit5k_train", "svt_train")])
    picks = [ds.get(i % len(ds), apply_transform=False) for i in range(n)]
    return [(encode_image(s.image, ".jpg"), s.label) for s in picks if s is not None]


def noise_samples(n: int):
    rng = np.random.default_rng(0)
    return [(encode_image(rng.integers(0, 256, (32, 100, 3), np.uint8)), "noise") for _ in range(n)]


def pipeline(augment: bool):
    parts = []
    if augment:
        try:
            from ocrkit.data.augment import StrAugment

            parts.append(StrAugment())
        except ImportError as exc:
            print(f"StrAugment unavailable ({exc}); measuring without augmentation")
    parts.append(StrTransform((32, 128)))
    return Compose(parts)


def measure(path: Path, workers: int, batch_size: int, transform, epochs: int) -> float:
    ds = open_dataset(path, transform=transform)
    loader = DataLoader(
        ds,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=collate_samples,
        persistent_workers=workers > 0,
    )
    next(iter(loader))  # start workers before timing
    count, start = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            count += len(batch["labels"])
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000, help="images in the temp LMDB")
    parser.add_argument("--render-samples", type=int, default=200, help="images to render")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--source", choices=["auto", "render", "shared", "noise"], default="auto")
    parser.add_argument("--no-augment", action="store_true", help="measure without StrAugment")
    args = parser.parse_args()

    print(
        f"cpu: {cpu_model()}; cores visible: {os.cpu_count()}; "
        f"torch threads: {torch.get_num_threads()}; torch {torch.__version__}"
    )
    samples, source, render_rate = None, args.source, None
    if args.source in ("auto", "render"):
        rendered, render_rate = rendered_samples(args.render_samples)
        if rendered:
            samples = [rendered[i % len(rendered)] for i in range(args.samples)]
            source = "render"
    if samples is None and args.source in ("auto", "shared"):
        samples, source = shared_samples(args.samples), "shared"
    if samples is None:
        samples, source = noise_samples(args.samples), "noise"
    if render_rate is not None:
        print(f"renderer: {render_rate:.1f} images/s (1 process, incl. PNG encoding)")

    transform = pipeline(augment=not args.no_augment)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench"
        write_lmdb(path, samples)
        print(
            f"lmdb: {len(samples)} images from {source}, "
            f"{(path / 'data.mdb').stat().st_size / 1e6:.1f} MB; transform {transform}"
        )
        reference = None
        for workers in args.workers:
            rate = measure(path, workers, args.batch_size, transform, args.epochs)
            reference = reference or rate
            print(
                f"num_workers={workers}: {rate:8.1f} images/s  ({rate / reference:.2f}x vs "
                f"{args.workers[0]} workers)"
            )


if __name__ == "__main__":
    main()
