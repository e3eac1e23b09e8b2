"""Accuracy of a trained MDiff4STR model with every sampler, with and without the revise pass.

    python benchmarks/mdiff_samplers.py --model runs/str/vit_tiny_mdiff_cpu/best \\
        --data $OCRKIT_DATA/str/iiit5k_test $OCRKIT_DATA/str/svt_test \\
        --ar-model runs/str/vit_tiny_ar_cpu/best --out mdiff_samplers.md

Every configuration is scored by ``ocrkit.eval.evaluate`` (the evaluator of ``ocrkit eval``)
under one label protocol (default parseq36). The table gives word accuracy per set and combined
(sample-weighted), the mean number of decoder passes per batch and images/s of the whole
recognizer in this run (with the hardware line). ``--ar-model`` adds the AR decoder, read
greedily with its KV cache, as the reference row. Writes the table as Markdown (``--out``) and
every number as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ocrkit.models.decoders.mdiff import SAMPLERS
from ocrkit.utils.hardware import describe_hardware

DEFAULT_SAMPLERS = (
    "parallel",
    "low_confidence",
    "semi_autoregressive",
    "autoregressive",
    "random",
    "cloze",
)


class PassCounter:
    """Wraps ``decoder.sample`` to add up the decoder passes of every batch."""

    def __init__(self, decoder: Any) -> None:
        self.decoder, self.original = decoder, decoder.sample
        self.batches = self.passes = 0
        decoder.sample = self

    def __call__(self, *args: Any, **kwargs: Any):
        out = self.original(*args, **kwargs)
        self.batches += 1
        self.passes += out.passes
        return out

    def reset(self) -> None:
        self.batches = self.passes = 0

    @property
    def mean(self) -> float:
        return self.passes / self.batches if self.batches else 0.0


def score(model: Any, datasets: dict, protocol: str, batch_size: int) -> tuple[dict, float]:
    """``({set: accuracy, ..., "combined": accuracy}, images per second)``."""
    from ocrkit.eval import evaluate

    start = time.perf_counter()
    report = evaluate(model, datasets, protocol, batch_size)
    seconds = time.perf_counter() - start
    accuracy = {name: m.accuracy for name, m in report.sets.items()}
    accuracy["combined"] = report.combined.accuracy
    return accuracy, report.combined.samples / max(seconds, 1e-9)


def run(args: argparse.Namespace) -> list[dict]:
    from ocrkit.data import open_dataset
    from ocrkit.models import Recognizer

    model = Recognizer.from_pretrained(args.model, device=args.device)
    if not hasattr(model.decoder, "sampling"):
        raise SystemExit(f"{args.model} has a {type(model.decoder).__name__}, not an MDiff decoder")
    datasets = {}
    for spec in args.data:
        datasets[Path(str(spec).rstrip("/")).name] = open_dataset(spec, protocol=args.protocol)
    if args.limit:
        from ocrkit.data import SubsetStrDataset

        datasets = {
            k: SubsetStrDataset(v, range(min(args.limit, len(v)))) for k, v in datasets.items()
        }
    rows = []
    if args.ar_model:
        ar = Recognizer.from_pretrained(args.ar_model, device=args.device)
        accuracy, speed = score(ar, datasets, args.protocol, args.batch_size)
        rows.append(
            {
                "decoder": "ar (KV cache)",
                "sampler": "greedy",
                "steps": "-",
                "revise": 0,
                "passes": None,
                "accuracy": accuracy,
                "images_per_s": speed,
            }
        )
        print(format_row(rows[-1], list(datasets)), flush=True)
    counter = PassCounter(model.decoder)
    for name in args.samplers:
        for revise in args.revise:
            counter.reset()
            with model.decoder.sampling(sampler=name, steps=args.steps, revise=revise):
                accuracy, speed = score(model, datasets, args.protocol, args.batch_size)
            takes_steps = "steps" in inspect.signature(SAMPLERS.get(name)).parameters
            rows.append(
                {
                    "decoder": "mdiff",
                    "sampler": name,
                    "steps": args.steps if takes_steps else "-",
                    "revise": revise,
                    "passes": counter.mean,
                    "accuracy": accuracy,
                    "images_per_s": speed,
                }
            )
            print(format_row(rows[-1], list(datasets)), flush=True)
    return rows


def format_row(row: dict, sets: list[str]) -> str:
    passes = "-" if row["passes"] is None else f"{row['passes']:.2f}"
    cells = [row["decoder"], row["sampler"], str(row["steps"]), str(row["revise"]), passes]
    cells += [f"{row['accuracy'][s]:.2f}" for s in [*sets, "combined"]]
    cells.append(f"{row['images_per_s']:.1f}")
    return "| " + " | ".join(cells) + " |"


def table(rows: list[dict], sets: list[str], header: str) -> str:
    columns = ["decoder", "sampler", "steps", "revise", "passes/batch", *sets, "combined", "img/s"]
    lines = [header, "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += [format_row(r, sets) for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="trained MDiff recognizer folder")
    parser.add_argument("--data", nargs="+", required=True, help="evaluation sets (as ocrkit eval)")
    parser.add_argument("--ar-model", help="an AR recognizer folder for the reference row")
    parser.add_argument("--protocol", default="parseq36")
    parser.add_argument(
        "--samplers", nargs="+", default=list(DEFAULT_SAMPLERS), choices=SAMPLERS.list()
    )
    parser.add_argument("--steps", type=int, default=3, help="step budget (paper: 3)")
    parser.add_argument(
        "--revise",
        type=int,
        nargs="+",
        default=[0, 1],
        help="revise passes to try (default: 0 and 1)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None, help="first N samples of each set")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--device", default=None, help="torch device (default CPU)")
    parser.add_argument("--out", type=Path, help="write the Markdown table here")
    parser.add_argument("--json", type=Path, help="write all numbers as JSON here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sets = [Path(str(s).rstrip("/")).name for s in args.data]
    header = (
        f"MDiff4STR samplers: {args.model}, protocol {args.protocol}, word accuracy (%); "
        f"hardware: {describe_hardware()}"
    )
    print(header)
    rows = run(args)
    text = table(rows, sets, header)
    print(text)
    from ocrkit.utils.io import atomic_write_json, atomic_write_text

    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)
    if args.json:
        atomic_write_json(args.json, {"header": header, "rows": rows})
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
