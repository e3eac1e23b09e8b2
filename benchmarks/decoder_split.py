"""Encoder and decoder time of trained recognizers, apart: how much a faster decoder can save.

    python benchmarks/decoder_split.py \\
        --models ar=runs/str/ppocrv6_frozen_ar_aug_cpu/best \\
        'mdiff-3step=runs/str/ppocrv6_frozen_mdiff_aug_cpu/best' \\
        'mdiff-1pass=runs/str/ppocrv6_frozen_mdiff_aug_cpu/best@sampler=parallel,steps=1' \\
        --data ../shared/data/str/iiit5k_test [--limit 200] [--threads 2] [--repeats 3]

A row is ``NAME=DIR[@key=val,...]`` as in benchmarks/report.py (decode options as ``ocrkit eval
--decode``). For each row, on the same real crops (the first ``--limit`` readable images of the
set, so the words have their real lengths and the AR decoder stops where they end): the median
time of the encoder (``model.backbone``) and of the decoder (``model.decoder.generate`` on the
encoder's output) at batch 1, and both for one batch of 64 crops in width order. Preprocessing
is left out (the same for rows sharing an encoder). The rows are timed in interleaved rounds
(every round times each row once per crop), so a drift of the machine reaches all alike; ratios
are against the first row, measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import parse_data, parse_row  # noqa: E402

from ocrkit.cli import CliError, decode_options  # noqa: E402
from ocrkit.utils.hardware import describe_hardware  # noqa: E402

BATCH = 64


def split_seconds(model, options: dict, x: torch.Tensor) -> tuple[float, float]:
    """Seconds of the encoder and of the decoder on the encoder's output, in one call each."""
    start = time.perf_counter()
    memory = model.backbone(x)
    middle = time.perf_counter()
    model.decoder.generate(memory, **options)
    return middle - start, time.perf_counter() - middle


def load_images(path: str, limit: int) -> list:
    """The first ``limit`` readable crops of a set, as RGB arrays."""
    from ocrkit.data import open_dataset

    dataset = open_dataset(path)
    images = []
    for i in range(len(dataset)):
        sample = dataset[i]
        if sample is not None:
            images.append(sample.image)
        if len(images) == limit:
            break
    if not images:
        raise CliError(f"no readable image in {path}")
    return images


@torch.inference_mode()
def measure(rows: list[tuple[str, object, dict]], images: list, repeats: int) -> list[dict]:
    """Per row: median encoder and decoder seconds at batch 1 and for one batch of 64."""
    from ocrkit.models.preprocess import stack_batch, width_order

    inputs, batches = [], []
    for _, model, _ in rows:
        singles = [stack_batch([image], model.transform) for image in images]
        order = width_order(images, model.transform)[:BATCH]
        inputs.append(singles)
        batches.append(stack_batch([images[i] for i in order], model.transform))
    times: list[dict[str, list[float]]] = [
        {"enc1": [], "dec1": [], "enc64": [], "dec64": []} for _ in rows
    ]
    for r, (_, model, options) in enumerate(rows):  # warm-up
        model.decoder.generate(model.backbone(batches[r]), **options)
        model.decoder.generate(model.backbone(inputs[r][0]), **options)
    for _ in range(repeats):
        for i in range(len(images)):
            for r, (_, model, options) in enumerate(rows):
                encoder, decoder = split_seconds(model, options, inputs[r][i])
                times[r]["enc1"].append(encoder)
                times[r]["dec1"].append(decoder)
        for r, (_, model, options) in enumerate(rows):
            encoder, decoder = split_seconds(model, options, batches[r])
            times[r]["enc64"].append(encoder)
            times[r]["dec64"].append(decoder)
    return [{key: statistics.median(values) for key, values in t.items()} for t in times]


def table(names: list[str], results: list[dict], batch: int) -> str:
    """A Markdown table; ``x ref`` columns are time ratios against the first row."""
    ref = results[0]
    head = (
        f"| row | encoder b1 ms | decoder b1 ms | sum b1 ms | decoder x ref | sum x ref | "
        f"encoder b{batch} ms | decoder b{batch} ms | img/s b{batch} | decoder b{batch} x ref |"
    )
    lines = [head, "|" + " --- |" * (head.count(" | ") + 1)]
    for name, t in zip(names, results):
        total1, total64 = t["enc1"] + t["dec1"], t["enc64"] + t["dec64"]
        cells = [
            name,
            f"{t['enc1'] * 1e3:.2f}",
            f"{t['dec1'] * 1e3:.2f}",
            f"{total1 * 1e3:.2f}",
            f"{t['dec1'] / ref['dec1']:.2f}x",
            f"{total1 / (ref['enc1'] + ref['dec1']):.2f}x",
            f"{t['enc64'] * 1e3:.1f}",
            f"{t['dec64'] * 1e3:.1f}",
            f"{batch / total64:.1f}",
            f"{t['dec64'] / ref['dec64']:.2f}x",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--models", nargs="+", required=True, metavar="NAME=DIR[@k=v,...]")
    parser.add_argument("--data", required=True, metavar="PATH")
    parser.add_argument("--limit", type=int, default=200, help="crops timed at batch 1")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="rounds over the crops")
    args = parser.parse_args(argv)
    if min(args.limit, args.threads, args.repeats) < 1:
        parser.error("--limit, --threads and --repeats must be at least 1")
    from ocrkit.models import load_recognizer

    torch.set_num_threads(args.threads)
    try:
        rows = []
        for spec in map(parse_row, args.models):
            model = load_recognizer(spec.path).eval()
            rows.append((spec.name, model, decode_options(spec.items, model)))
        images = load_images(parse_data(args.data)[1], args.limit)
    except (CliError, FileNotFoundError, ValueError) as exc:
        print(f"decoder_split.py: error: {exc}", file=sys.stderr)
        return 1
    results = measure(rows, images, args.repeats)
    batch = min(BATCH, len(images))
    print(f"hardware: {describe_hardware()}")
    print(
        f"{len(images)} crops of {args.data} at batch 1 (median of {args.repeats} rounds), one "
        f"batch of {batch} in width order; preprocessing excluded; x/ref: time ratios "
        f"against {rows[0][0]!r} (below 1: faster)"
    )
    print(table([name for name, _, _ in rows], results, batch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
