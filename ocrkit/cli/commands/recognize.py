"""``ocrkit recognize``: read word images with a trained recognizer."""

from __future__ import annotations

import argparse
import json
import sys

from ocrkit.cli import add_decode_option, add_model_source, decode_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "recognize",
        help="read the text of word images",
        description="Read cropped word images with a recognizer folder (config.json, "
        "model.safetensors, charset.json). Prints 'path<TAB>text<TAB>confidence' per image, or "
        "one JSON object per line with --json. IMAGE may be a file, a folder (its images, "
        "recursively) or a quoted glob pattern. A file that cannot be read is reported on "
        "stderr and skipped; the exit code is then 1.",
        epilog="example: ocrkit recognize --model runs/str/best word1.png crops/ 'more/*.jpg'",
    )
    parser.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image files, folders or glob patterns"
    )
    add_model_source(parser)
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    parser.add_argument("--batch-size", type=int, default=64, help="images per batch (64)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: cpu)")
    add_decode_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ocrkit.cli import CliError
    from ocrkit.cli.commands.export import load_model
    from ocrkit.cli.inputs import expand_images, read_images, report_skipped

    if args.batch_size < 1:
        raise ValueError("--batch-size must be at least 1")
    paths, problems = expand_images(args.images)
    report_skipped("recognize", problems)
    if not paths:
        raise CliError("no image to read")
    model = load_model(args.model, args.onnx, args.device)
    options = decode_options(args.decode, model)
    skipped = len(problems)
    batch: list[tuple[str, object]] = []
    for path, image, why in read_images(paths):
        if image is None:
            report_skipped("recognize", [(path, why)])
            skipped += 1
            continue
        batch.append((path, image))
        if len(batch) == args.batch_size:
            _print(batch, model.predict([im for _, im in batch], **options), args.json)
            batch = []
    if batch:
        _print(batch, model.predict([im for _, im in batch], **options), args.json)
    if skipped:
        read = len(paths) - (skipped - len(problems))
        print(f"ocrkit recognize: read {read} images, skipped {skipped}", file=sys.stderr)
        return 1
    return 0


def _print(batch: list, predictions: list, as_json: bool) -> None:
    for (path, _), pred in zip(batch, predictions):
        if as_json:
            record = {"path": path, "text": pred.text, **pred.details()}
            print(json.dumps(record, ensure_ascii=False))
        else:
            print(f"{path}\t{pred.text}\t{pred.confidence:.4f}")
    sys.stdout.flush()
