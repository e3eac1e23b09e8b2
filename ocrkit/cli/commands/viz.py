"""ocrkit viz: analysis plots of encoders (ocrkit viz attention)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ATTENTION_HELP = """\
Draw the last encoder layer's attention for a query token over word images (MNSP paper, Fig. 3):
one row per image, one column per encoder, heads averaged unless --head is given. Encoders are
ocrkit folders: a mim/mnsp pretraining output (e.g. runs/pretrain/mnsp/final) or a recognizer
(its backbone is used).
"""

ATTENTION_EXAMPLES = """\
examples:
  ocrkit viz attention --encoder runs/mim/final runs/mnsp/final --names MIM MNSP \\
      --images word1.png word2.jpg --out attention.png
  ocrkit viz attention --encoder runs/str/best --data data/str/svt_test --limit 6 --query 4,10
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "viz", help="analysis plots of encoders (attention maps)", description=__doc__
    )
    sub = parser.add_subparsers(dest="viz_command", metavar="PLOT")
    attention = sub.add_parser(
        "attention",
        help="query-based attention maps of the last encoder layer -> PNG",
        description=ATTENTION_HELP,
        epilog=ATTENTION_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    attention.add_argument(
        "--encoder",
        nargs="+",
        required=True,
        metavar="DIR",
        help="encoder folders: pretraining or recognizer folders, or default / tiny",
    )
    attention.add_argument("--names", nargs="+", help="column titles (default: folder names)")
    source = attention.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", nargs="+", metavar="IMAGE", help="word image files")
    source.add_argument("--data", metavar="SPEC", help="a dataset (folder, LMDB, hf:NAME, ...)")
    attention.add_argument("--limit", type=int, default=6, help="images taken from --data (6)")
    attention.add_argument(
        "--query", default="cls", help="cls (default), mean (all patch queries) or ROW,COL"
    )
    attention.add_argument("--head", type=int, default=None, help="one head (default: mean)")
    attention.add_argument("--out", type=Path, default=Path("attention.png"), help="PNG path")
    attention.add_argument("--device", default="cpu", help="torch device (cpu)")
    attention.set_defaults(func=run_attention)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _images(args: argparse.Namespace) -> tuple[list, list[str], list[str]]:
    """The images to draw, their titles and why each unreadable named image was left out."""
    from ocrkit.cli.inputs import read_one_image

    if args.images:  # an unreadable image is reported and left out; the others are drawn
        from ocrkit.cli import CliError

        images, titles, errors = [], [], []
        for path in args.images:
            try:
                images.append(read_one_image(path))
            except CliError as exc:
                errors.append(str(exc))
                continue
            titles.append(Path(path).name)
        return images, titles, errors
    from ocrkit.data import open_dataset

    dataset = open_dataset(args.data)
    images, titles = [], []
    for i in range(min(args.limit, len(dataset))):
        sample = dataset[i]
        if sample is not None:
            images.append(sample.image)
            titles.append(sample.label or sample.key)
    return images, titles, []


def run_attention(args: argparse.Namespace) -> int:
    from ocrkit.cli import CliError
    from ocrkit.pretrain.encoders import load_encoder
    from ocrkit.viz import attention_map, draw_attention, parse_query

    names = args.names or [
        Path(p).name if Path(p).name not in ("final", "best") else "/".join(Path(p).parts[-2:])
        for p in args.encoder
    ]
    if len(names) != len(args.encoder):
        raise CliError(f"--names gives {len(names)} titles for {len(args.encoder)} encoders")
    query = parse_query(args.query)
    images, titles, errors = _images(args)  # before the encoders: bad images are named at once
    if not images:
        raise CliError(
            errors[0] if len(errors) == 1 else "no readable images; check --images / --data"
        )
    for error in errors:
        print(f"ocrkit viz: skipped: {error}", file=sys.stderr)
    encoders = [load_encoder(p).to(args.device) for p in args.encoder]
    img_size = tuple(encoders[0].img_size)
    maps = [[attention_map(e, im, query, args.head, img_size) for e in encoders] for im in images]
    out = draw_attention(images, maps, names, args.out, query, img_size, titles=titles)
    print(f"wrote {out}")
    return 1 if errors else 0  # as 'ocrkit recognize': the readable ones drawn, the run flagged
