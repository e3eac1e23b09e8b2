"""Data feed rate of the paper recipes: images/s per CPU core, and the loader workers a GPU needs.

    python benchmarks/data_feed.py [--samples 512] [--recipes vit_small_ar ...]
                                   [--sustained-tflops 400] [--gpu-ips NAME=IMG_S ...]

For each recipe the trainer's own input path is timed: the recipe's task builds its dataset
(LMDB decode, the recipe's augmentation preset or pretraining views, the model's resize and
normalization) over an LMDB of real word crops (IIIT5K + SVT train from ../shared/data; rendered
words when absent), read through :class:`~ocrkit.train.sampling.EpochSampler` and
:class:`~ocrkit.train.sampling.SeededDataset` and batched by the task's collate function at the
recipe's per-device batch size, in the main process with one torch thread: images/s per core.

Workers needed = GPU images/s / (images/s per core). No GPU run exists (see docs/training.md),
so the GPU images/s is derived, not measured: the training FLOPs per image are counted on CPU
(``torch.utils.flop_counter`` over forward + backward of the real model) and divided into an
assumed sustained bf16 rate (``--sustained-tflops``, default 400: about 40% of an H100/H200's
989 dense bf16 TFLOP/s). ``--gpu-ips`` replaces the estimate with a measured rate (e.g. the
img/s column of benchmarks/gpu_smoke.py).
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_pipeline import noise_samples, rendered_samples, shared_samples  # noqa: E402
from gpu_smoke import smoke_config  # noqa: E402

from ocrkit.data import write_lmdb  # noqa: E402
from ocrkit.train.sampling import EpochSampler, SeededDataset  # noqa: E402
from ocrkit.utils.hardware import describe_hardware  # noqa: E402

DEFAULT = ["vit_small_ar", "svtrv2_small_mdiff", "mim_vit_small", "mnsp_vit_small"]


def word_lmdb(folder: Path, n: int) -> tuple[Path, str]:
    samples, source = shared_samples(n), "IIIT5K+SVT train crops"
    if not samples:
        samples, source = rendered_samples(n)[0], "rendered words"
    if not samples:
        samples, source = noise_samples(n), "noise images"
    write_lmdb(folder, samples)
    return folder, source


def feed_rate(parts, batch: int, samples: int) -> tuple[float, dict]:
    """Images/s of the trainer's loader path in this process (workers=0), and one batch."""
    loader = DataLoader(
        SeededDataset(parts.train_dataset),
        batch_size=batch,
        sampler=EpochSampler(len(parts.train_dataset), seed=0, epoch=0),
        collate_fn=parts.collate_fn,
        num_workers=0,
        drop_last=True,
    )
    it = iter(loader)
    first = next(it)  # opens the LMDB, warms caches
    count, start = 0, time.perf_counter()
    for _ in range(max(1, samples // batch)):
        next(it)
        count += batch
    return count / (time.perf_counter() - start), first


def train_flops_per_image(model: torch.nn.Module, batch: dict, size: int) -> float:
    """FLOPs of forward + backward of ``training_step`` on the first ``size`` items, per item."""

    def head(value):
        if isinstance(value, torch.Tensor) and value.ndim and value.shape[0] == len_batch:
            return value[:size]
        if isinstance(value, list) and len(value) == len_batch:
            return value[:size]
        if isinstance(value, dict):
            return {k: head(v) for k, v in value.items()}
        return value

    len_batch = next(v.shape[0] for v in _tensors(batch))
    small = head(batch)
    model.train()
    with FlopCounterMode(display=False) as counter:
        model.training_step(small)["loss"].backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / size


def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--samples", type=int, default=512, help="images timed per recipe (whole batches)"
    )
    parser.add_argument("--recipes", nargs="+", default=DEFAULT, choices=DEFAULT)
    parser.add_argument("--batch", type=int, help="batch size (default: the recipe's)")
    parser.add_argument("--sustained-tflops", type=float, default=400.0)
    parser.add_argument("--gpu-ips", nargs="*", default=[], metavar="RECIPE=IMG_S")
    args = parser.parse_args(argv)
    measured = {k: float(v) for k, v in (item.split("=", 1) for item in args.gpu_ips)}
    torch.set_num_threads(1)
    print(f"# hardware: {describe_hardware()} (timed in one process: images/s per core)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        largest = args.batch or 256  # the largest recipe batch (SVTRv2 MDiff)
        size = max(args.samples, largest) + largest  # timed + the first batch
        lmdb, source = word_lmdb(Path(tmp) / "words", size)
        print(f"# data: LMDB of {size} {source}", flush=True)
        smoke_args = SimpleNamespace(device="cpu", qmask_size="tiny", cache=tmp)
        for name in args.recipes:
            config = smoke_config(name, 1, args.batch, 1, copy.copy(smoke_args))
            config["data"]["train"] = [str(lmdb)]
            from ocrkit.train.tasks import build_task

            torch.manual_seed(0)
            parts = build_task(config)
            batch = config["train"]["batch_size"]
            rate, first = feed_rate(parts, batch, args.samples)
            flops = train_flops_per_image(parts.model, first, 2)
            gpu = measured.get(name) or args.sustained_tflops * 1e12 / flops
            rows.append(
                {
                    "name": name,
                    "batch": batch,
                    "augment": config["data"].get("augment") or config["model"].get("augment"),
                    "per_core": rate,
                    "gflops": flops / 1e9,
                    "gpu_ips": gpu,
                    "gpu_source": "measured" if name in measured else "derived",
                    "workers": math.ceil(gpu / rate),
                }
            )
            print(f"# {name}: {rate:.1f} img/s per core", flush=True)
    print(
        f"{'recipe':<19} {'batch':>5} {'augment':<12} {'img/s/core':>10} {'GFLOP/img':>9} "
        f"{'GPU img/s':>10} {'workers/GPU':>11}"
    )
    for r in rows:
        print(
            f"{r['name']:<19} {r['batch']:>5} {str(r['augment']):<12} {r['per_core']:>10.1f} "
            f"{r['gflops']:>9.2f} {r['gpu_ips']:>8.0f} {r['gpu_source'][0]} {r['workers']:>11}"
        )
    print(
        f"GPU img/s: d = derived from {args.sustained_tflops:.0f} sustained bf16 TFLOP/s and the "
        "counted training FLOPs per image (no GPU was measured); m = given with --gpu-ips"
    )
    return rows


if __name__ == "__main__":
    main()
