"""``ocrkit recognize``: read word images with a trained recognizer."""

from __future__ import annotations

import argparse
import json

from ocrkit.cli import add_decode_option, decode_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "recognize",
        help="read the text of word images",
        description="Read cropped word images with a recognizer folder (config.json, "
        "model.safetensors, charset.json). Prints 'path<TAB>text<TAB>confidence' per image, or "
        "one JSON object per line with --json.",
        epilog="example: ocrkit recognize --model runs/str/best word1.png word2.jpg",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--model",
        metavar="DIR",
        help="recognizer folder, or an embedded model: default (PP-OCRv6-based, Latin) or tiny",
    )
    source.add_argument(
        "--onnx",
        metavar="DIR",
        help="ONNX folder from 'ocrkit export onnx' (onnxruntime), or default/tiny (exported "
        "into the cache on first use)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    parser.add_argument("--batch-size", type=int, default=64, help="images per batch (64)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: cpu)")
    add_decode_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ocrkit.cli.commands.export import load_model

    if args.batch_size < 1:
        raise ValueError("--batch-size must be at least 1")
    model = load_model(args.model, args.onnx, args.device)
    options = decode_options(args.decode, model)
    predictions = model.recognize(args.images, batch_size=args.batch_size, **options)
    for path, pred in zip(args.images, predictions):
        if args.json:
            record = {
                "path": path,
                "text": pred.text,
                "confidence": round(pred.confidence, 6),
                "char_confidences": [round(c, 6) for c in pred.char_confidences],
            }
            print(json.dumps(record, ensure_ascii=False))
        else:
            print(f"{path}\t{pred.text}\t{pred.confidence:.4f}")
    return 0
