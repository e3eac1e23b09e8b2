"""``ocrkit convert ppocr``: import a PP-OCR recognizer (ONNX) as an ocrkit model folder."""

from __future__ import annotations

import argparse

from ocrkit.cli import CliError

PPOCR_DESCRIPTION = """\
Convert a PP-OCR text recognizer from its ONNX file into an ocrkit model folder that loads
with ocrkit alone (PyTorch modules, safetensors weights):

  config.json, model.safetensors, charset.json   (the model's own dictionary, blank + space)
  LICENSE, NOTICE                                 (Apache-2.0; where the weights came from)

Supported graphs: PP-OCRv6 small (PPLCNetV4 + light SVTR neck + CTC, rapidocr 3.x) and
PP-OCRv4/v5 mobile (PPLCNetV3 + SVTR neck + CTC, e.g. rapidocr-onnxruntime 1.x). Dictionary
entries of several code points or repeated ones are dropped with their head rows (listed). Preprocessing is
PaddleOCR's: height 48, aspect ratio kept, bilinear resize, (x/255 - 0.5)/0.5, zero padding to
at least width 320, BGR channel order.
"""

PPOCR_EXAMPLES = """\
examples:
  ocrkit convert ppocr --from-wheel rapidocr --output models/ppocrv6-small
  ocrkit convert ppocr --from-wheel rapidocr-onnxruntime --output models/ppocrv4
  ocrkit convert ppocr --onnx PP-OCRv6_rec_small.onnx --output models/ppocrv6-small
  ocrkit convert ppocr --onnx en_PP-OCRv4_rec.onnx --dict en_dict.txt --output models/en-v4
  ocrkit recognize --model models/ppocrv6-small word.png

needs: pip install 'ocrkit[onnx]' (and the wheel, e.g. 'ocrkit[external]', for --from-wheel)
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="import weights from another toolkit (PP-OCR)",
        description="Import a model from another toolkit into an ocrkit model folder.",
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND")
    ppocr = kinds.add_parser(
        "ppocr",
        help="PP-OCRv6 small / PP-OCRv4 recognizer ONNX -> ocrkit model folder",
        description=PPOCR_DESCRIPTION,
        epilog=PPOCR_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = ppocr.add_mutually_exclusive_group(required=True)
    source.add_argument("--onnx", metavar="PATH", help="a PP-OCR recognition .onnx file")
    source.add_argument(
        "--from-wheel",
        choices=["rapidocr", "rapidocr-onnxruntime"],
        help="take the recognizer shipped in this installed wheel",
    )
    ppocr.add_argument("--output", required=True, metavar="DIR", help="folder to write")
    ppocr.add_argument(
        "--dict",
        metavar="TXT",
        help="the model's character dictionary (PaddleOCR's one entry per line), for a graph "
        "whose metadata holds none or a wrong one",
    )
    ppocr.set_defaults(func=run_ppocr)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run_ppocr(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ocrkit.models.convert_ppocr import convert_ppocr, wheel_model_path

    if args.from_wheel:
        from importlib.metadata import version

        path = wheel_model_path(args.from_wheel)
        source = f"the {args.from_wheel} {version(args.from_wheel)} wheel"
    else:
        path = Path(args.onnx)
        if not path.is_file():
            raise CliError(f"--onnx {args.onnx}: no such file")
        source = None
    if args.dict and not Path(args.dict).is_file():
        raise CliError(f"--dict {args.dict}: no such file")
    try:
        folder = convert_ppocr(path, args.output, source=source, dictionary=args.dict)
    except ImportError as exc:
        raise CliError(str(exc)) from None
    print(f"wrote {folder} (from {path})")
    return 0
