"""``ocrkit read``: page-level OCR (text detection + recognition) of whole images."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ocrkit.cli import CliError, add_model_source


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "read",
        help="find and read all the text in whole images (photos, pages)",
        description="Detect text regions with the PP-OCRv6 small detector of the rapidocr wheel "
        "(onnxruntime), rectify and recognize each with an ocrkit recognizer, and print the "
        "lines in reading order: 'x1,y1,x2,y2<TAB>confidence<TAB>text' under a '# IMAGE' "
        "header, or one JSON object per image with --json. An image that cannot be read is "
        "reported and skipped; the exit code is then 1.",
        epilog="example: ocrkit read photo.jpg --draw photo_ocr.png",
    )
    parser.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image files, folders or glob patterns"
    )
    add_model_source(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object per image")
    parser.add_argument(
        "--draw",
        metavar="OUT",
        help="write the image with boxes and text drawn over it (one image: OUT is the file; "
        "several: OUT is a folder, one IMAGE_STEM.png each)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=16, help="crops per recognizer batch (16)"
    )
    parser.add_argument(
        "--min-confidence",
        type=float,
        default=0.5,
        help="drop lines whose mean character confidence is lower (0.5, rapidocr's text_score)",
    )
    parser.add_argument(
        "--db",
        choices=("paddle", "wheel"),
        default="paddle",
        help="DB post-processing preset: PaddleOCR's (default: box threshold 0.6, unclip 1.5, "
        "no dilation; more boxes found, docs/ocr.md) or the rapidocr wheel's (0.5, 1.6, "
        "dilation: the wheel's own boxes)",
    )
    parser.add_argument("--box-thresh", type=float, help="DB box threshold (the preset's)")
    parser.add_argument("--unclip-ratio", type=float, help="DB unclip ratio (the preset's)")
    parser.add_argument("--det-model", metavar="ONNX", help="detector .onnx (default: the wheel's)")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: all)")
    parser.add_argument("--device", default=None, help="recognizer device: cpu, cuda, ...")
    parser.set_defaults(func=run)


def _draw_path(out: str, image: str, several: bool) -> Path:
    if not several:
        return Path(out)
    return Path(out) / f"{Path(image).stem}.png"


def run(args: argparse.Namespace) -> int:
    from ocrkit.cli.commands.export import load_model
    from ocrkit.data.image_io import CorruptImageError, decode_image, encode_image
    from ocrkit.ocr import PageReader, TextDetector
    from ocrkit.ocr.postprocess import db_preset

    if args.batch_size < 1:
        raise ValueError("--batch-size must be at least 1")
    try:
        detector = TextDetector(
            args.det_model,
            db=db_preset(args.db, box_thresh=args.box_thresh, unclip_ratio=args.unclip_ratio),
            threads=args.threads,
        )
    except ImportError as exc:
        raise CliError(str(exc)) from None
    reader = PageReader(
        load_model(args.model, args.onnx, args.device),
        detector,
        min_confidence=args.min_confidence,
        batch_size=args.batch_size,
    )
    from ocrkit.cli.inputs import expand_images

    paths, problems = expand_images(args.images)  # folders and glob patterns too
    for item, why in problems:
        print(f"ocrkit read: error: {item}: {why} (skipped)", file=sys.stderr)
    several = len(paths) > 1
    failed = len(problems)
    for path in paths:
        try:
            image = decode_image(Path(path).read_bytes())
        except (OSError, CorruptImageError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            print(f"ocrkit read: error: {path}: {reason} (skipped)", file=sys.stderr)
            failed += 1
            continue
        page = reader(image)
        page.path = path
        if args.json:
            print(json.dumps(page.to_dict(), ensure_ascii=False), flush=True)
        else:
            print(f"# {path}")
            for line in page.lines:
                box = ",".join(str(int(round(v))) for v in line.box)
                print(f"{box}\t{line.confidence:.4f}\t{line.text}")
        if args.draw:
            from ocrkit.ocr.draw import draw_page

            target = _draw_path(args.draw, path, several)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(encode_image(draw_page(image, page), ".png"))
            print(f"wrote {target}", file=sys.stderr)  # stderr: stdout may be JSON lines
    if failed:
        print(
            f"ocrkit read: {failed} of {len(paths) + len(problems)} images could not be read",
            file=sys.stderr,
        )
    return 1 if failed else 0
