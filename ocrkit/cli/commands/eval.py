"""``ocrkit eval``: score a model or a predictions file on STR sets and print the table."""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path
from types import SimpleNamespace

from ocrkit.cli import CliError, add_decode_option, add_model_source, decode_options

DESCRIPTION = """\
Evaluate a recognizer (--model, or --onnx for an exported one; default: the embedded default
model) or a predictions file (--predictions) on one or more sets. An unreadable or missing image
scores as a wrong prediction and is counted (--exclude-unreadable leaves them out, and says so).
Prints samples, word accuracy, 1-NED and mean confidence per set and combined (sample-weighted),
and names the label protocol that produced the numbers.

Predictions file: one 'image_path<TAB>prediction[<TAB>confidence]' line per image, with paths as
in the set's labels.tsv (relative to the set directory). With several sets, prefix paths with the
set name ('iiit5k_test/images/1.jpg') or use absolute paths. Samples with no prediction score as
empty predictions and are counted.

Protocols: parseq36 (standard: case-insensitive 0-9a-z), cased62, full94, full95 (spaces kept),
raw.
"""

EXAMPLES = """\
examples:
  ocrkit eval --predictions pred.tsv --data data/str/iiit5k_test --json out.json
  ocrkit eval --model runs/vit_tiny/best --data data/str/iiit5k_test data/str/svt_test \\
      --protocol cased62 --samples per_sample.tsv --split-by-area --shrink 0.5
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a model or predictions file on STR sets",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = add_model_source(parser)
    source.add_argument("--predictions", type=Path, help="TSV of image_path<TAB>prediction")
    parser.add_argument(
        "--data", nargs="+", required=True, help="evaluation sets (folder, LMDB, hf:NAME, ...)"
    )
    parser.add_argument("--protocol", default="parseq36", help="label protocol (default parseq36)")
    parser.add_argument("--max-length", type=int, default=None, help="override max label length")
    parser.add_argument("--json", type=Path, help="write the report as JSON")
    parser.add_argument("--csv", type=Path, help="write the per-set table as CSV")
    parser.add_argument("--samples", type=Path, help="write per-sample predictions as TSV")
    parser.add_argument(
        "--batch-size", type=int, default=64, help="crops per model call, read in width order (64)"
    )
    parser.add_argument(
        "--exclude-unreadable",
        action="store_true",
        help="leave unreadable or missing images out of the figures (the report header says "
        "so); by default each scores as a wrong prediction, on the whole set",
    )
    parser.add_argument("--device", default=None, help="torch device for --model (default: cpu)")
    add_decode_option(parser)
    parser.add_argument(
        "--split-by-area",
        action="store_true",
        help="also score the small and large halves of each set by original image area "
        "(MNSP Table 6)",
    )
    parser.add_argument(
        "--shrink",
        type=float,
        default=None,
        metavar="SCALE",
        help="also score with images shrunk by SCALE and black-padded (MNSP Fig. 4 uses 0.5); "
        "needs --model",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ocrkit.data import SubsetStrDataset, open_dataset
    from ocrkit.eval import (
        PerturbedPredictor,
        area_split,
        evaluate,
        evaluate_predictions,
        read_predictions,
        shrink_pad,
    )
    from ocrkit.text import get_protocol

    overrides = {"max_length": args.max_length} if args.max_length is not None else {}
    protocol = get_protocol(args.protocol, **overrides)
    if args.shrink is not None and args.predictions is not None:
        raise CliError("--shrink perturbs images, so it needs --model (not --predictions)")

    datasets = {}
    for spec in args.data:
        name = _set_name(spec, datasets)
        datasets[name] = open_dataset(spec, protocol=protocol)
    if args.split_by_area:
        for name, dataset in list(datasets.items()):
            for half, indices in area_split(dataset).items():
                datasets[f"{name}:{half}"] = SubsetStrDataset(
                    dataset, indices, name=f"{name}:{half}"
                )

    if args.predictions is not None:
        predictions = read_predictions(args.predictions)
        per_set = _predictions_per_set(predictions, datasets, dict(zip(datasets, args.data)))
        report = evaluate_predictions(per_set, datasets, protocol, source=str(args.predictions))
    else:
        from ocrkit.cli.commands.export import load_model

        if args.model is None and args.onnx is None:
            args.model = "default"  # as 'ocrkit recognize' without --model
        model = with_decode_options(load_model(args.model, args.onnx, args.device), args.decode)
        source = str(args.model or args.onnx)
        exclude = args.exclude_unreadable
        report = evaluate(model, datasets, protocol, args.batch_size, source, exclude)
        if args.shrink is not None:
            scale = args.shrink
            shrunk = PerturbedPredictor(model, lambda im: shrink_pad(im, scale))
            base = {n: d for n, d in datasets.items() if ":" not in n}
            perturbed = evaluate(shrunk, base, protocol, args.batch_size, "", exclude)
            for name, metrics in perturbed.sets.items():
                metrics.name = f"{name}@shrink{scale:g}"
                report.sets[metrics.name] = metrics
            report.samples.extend(perturbed.samples)

    report.derived = {name for name in report.sets if ":" in name or "@" in name}
    print(report.format_table())
    if args.shrink is not None:
        print(_drops(report, args.shrink))
    report.write(args.json, args.csv, args.samples)
    for path in (args.json, args.csv, args.samples):
        if path:
            print(f"wrote {path}", file=sys.stderr)
    return 0


def with_decode_options(model, items: list[str]):
    """``model`` itself, or a predictor that passes ``--decode`` options to ``model.predict``."""
    options = decode_options(items, model)
    if not options:
        return model
    return SimpleNamespace(predict=partial(model.predict, **options))


def _set_name(spec: str, taken: dict) -> str:
    name = Path(str(spec).rstrip("/")).name or str(spec)
    base, i = name, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    return name


def _predictions_per_set(predictions: dict, datasets: dict, specs: dict) -> dict:
    """For each set, find each sample's prediction by ``SET/key``, absolute path or bare key."""
    from ocrkit.eval import iter_labels

    per_set = {}
    for name, dataset in datasets.items():
        base = name.split(":")[0]
        root = Path(specs[base]).resolve() if base in specs else None
        found = {}
        for key, _ in iter_labels(dataset):
            candidates = (f"{base}/{key}", str(root / key) if root else "", key)
            hit = next((c for c in candidates if c in predictions), None)
            if hit is not None:
                found[key] = predictions[hit]
        per_set[name] = found
    return per_set


def _drops(report, scale: float) -> str:
    lines = [f"accuracy drop with shrink {scale:g} (points):"]
    for name, metrics in report.sets.items():
        shrunk = report.sets.get(f"{name}@shrink{scale:g}")
        if shrunk is not None and "@" not in name:
            lines.append(
                f"  {name}: {metrics.accuracy:.2f} -> {shrunk.accuracy:.2f} "
                f"({shrunk.accuracy - metrics.accuracy:+.2f})"
            )
    return "\n".join(lines)
