"""``ocrkit data``: convert any source to LMDB, inspect a dataset, render synthetic words."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any

SPEC_HELP = (
    "dataset spec: an LMDB folder, an image folder with labels.tsv, a PaddleOCR list .txt, a "
    "scene annotations.jsonl, or hf:NAME_OR_PATH[:split]"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data",
        help="convert, inspect and render datasets",
        description="Convert datasets to LMDB, inspect them, or render synthetic words.",
    )
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])

    convert = sub.add_parser(
        "convert",
        help="write one or more sources into an STR-layout LMDB",
        description="Write sources into one LMDB (num-samples, image-%09d, label-%09d). "
        "Encoded images are copied byte for byte; crops are encoded. Corrupt images are "
        "skipped and counted.",
        epilog="example: ocrkit data convert data/iiit5k_train data/svt_train --out lmdb/train "
        "--protocol parseq36",
    )
    convert.add_argument("sources", nargs="+", metavar="SRC", help=SPEC_HELP)
    convert.add_argument("--out", required=True, help="output LMDB folder")
    convert.add_argument(
        "--protocol", help="filter labels (parseq36, cased62, full94, full95, raw)"
    )
    convert.add_argument(
        "--normalize-labels",
        action="store_true",
        help="store labels as normalized by --protocol (default: the original labels that pass)",
    )
    convert.add_argument("--unlabeled", action="store_true", help="keep every image, no labels")
    convert.add_argument(
        "--format",
        default=".jpg",
        choices=[".jpg", ".png"],
        help="encoding for crops that have no original bytes (default .jpg)",
    )
    convert.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    convert.set_defaults(func=run_convert)

    inspect = sub.add_parser(
        "inspect",
        help="counts, label and image statistics, and a grid of samples",
        description="Print counts, the label length histogram, charset coverage and image "
        "size statistics; optionally save a PNG grid of samples with their labels.",
        epilog="example: ocrkit data inspect data/svt_test --protocol parseq36 --grid svt.png",
    )
    inspect.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    inspect.add_argument("--protocol", help="filter labels as training/evaluation would")
    inspect.add_argument("--unlabeled", action="store_true", help="ignore labels")
    inspect.add_argument("--grid", help="write a PNG grid of samples here")
    inspect.add_argument("--n", type=int, default=32, help="samples in the grid (default 32)")
    inspect.add_argument(
        "--max-images",
        type=int,
        default=2000,
        help="decode at most this many images for size stats (default 2000)",
    )
    inspect.add_argument("--seed", type=int, default=0, help="seed for picking samples")
    inspect.add_argument("--json", action="store_true", help="print the statistics as JSON")
    inspect.set_defaults(func=run_inspect)

    render = sub.add_parser(
        "render",
        help="render synthetic word images (delegates to ocrkit.data.render)",
        description="Render synthetic word images into an LMDB.",
    )
    from ocrkit.cli.render import add_render_arguments

    add_render_arguments(render)
    render.set_defaults(func=run_render)


def run_render(args: argparse.Namespace) -> int:
    from ocrkit.cli import CliError

    try:
        from ocrkit.cli.render import run_render as render_main
    except ImportError as exc:
        raise CliError(f"the synthetic renderer is not available ({exc})") from None
    return int(render_main(args) or 0)


def _print_report(report: dict[str, Any], indent: str = "") -> None:
    dropped = ", ".join(f"{k}={v}" for k, v in sorted(report["dropped"].items())) or "none"
    skipped = ", ".join(f"{k}={v}" for k, v in sorted(report["skipped"].items())) or "none"
    print(
        f"{indent}{report['name']}: total {report['total']}, kept {report['kept']}, "
        f"dropped {sum(report['dropped'].values())} ({dropped}), "
        f"skipped {sum(report['skipped'].values())} ({skipped})"
    )


def run_convert(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ocrkit.cli import CliError
    from ocrkit.data.base import ConcatStrDataset
    from ocrkit.data.image_io import CorruptImageError, decode_image
    from ocrkit.data.lmdb import write_lmdb
    from ocrkit.data.sources import open_dataset

    if Path(args.out).exists() and not args.overwrite:
        raise CliError(f"{args.out} exists; pass --overwrite to replace it")
    if args.normalize_labels and not args.protocol:
        raise CliError("--normalize-labels needs --protocol")
    opened = open_dataset(list(args.sources), protocol=args.protocol, unlabeled=args.unlabeled)
    parts = opened.datasets if isinstance(opened, ConcatStrDataset) else [opened]

    def samples():
        for ds in parts:
            for i in range(len(ds)):
                j = ds.raw_index(i)
                key = ds._key(j)
                try:
                    raw, raw_label, key = ds._load(j)
                    if isinstance(raw, bytes):
                        decode_image(raw)  # never copy an image that cannot be read back
                except (CorruptImageError, OSError) as exc:
                    ds._record_skip(key, exc)
                    continue
                label = ds.labels[i] if (args.normalize_labels or ds.unlabeled) else raw_label
                yield raw, label

    total = sum(len(ds) for ds in parts)
    count = write_lmdb(
        args.out, samples(), image_format=args.format, overwrite=args.overwrite, total=total
    )
    for ds in parts:
        _print_report(ds.filter_report())
    print(f"wrote {count} samples to {args.out}")
    return 0


def _histogram(counter: Counter[int], width: int = 40) -> list[str]:
    if not counter:
        return []
    peak = max(counter.values())
    return [
        f"  {k:3d} | {'#' * max(1, round(width * v / peak)):<{width}} {v}"
        for k, v in sorted(counter.items())
    ]


def _size_stats(values: list[float]) -> dict[str, float]:
    import numpy as np

    a = np.asarray(values, dtype=np.float64)
    return {
        "min": float(a.min()),
        "median": float(np.median(a)),
        "mean": float(a.mean()),
        "max": float(a.max()),
    }


def dataset_stats(ds: Any, max_images: int, seed: int) -> dict[str, Any]:
    """Label lengths, character counts and image size statistics of a dataset."""
    import numpy as np

    labels = [label for label in ds.labels if label is not None]
    lengths = Counter(len(label) for label in labels)
    chars = Counter(c for label in labels for c in label)
    picked = np.random.default_rng(seed).permutation(len(ds))[:max_images]
    heights, widths, aspects = [], [], []
    for i in picked:
        sample = ds.get(int(i), apply_transform=False)
        if sample is not None:
            h, w = sample.image.shape[:2]
            heights.append(h)
            widths.append(w)
            aspects.append(w / h)
    stats: dict[str, Any] = {
        "samples": len(ds),
        "label_lengths": dict(sorted(lengths.items())),
        "chars": dict(chars.most_common()),
        "images_measured": len(heights),
    }
    if heights:
        stats |= {
            "height": _size_stats(heights),
            "width": _size_stats(widths),
            "aspect": _size_stats(aspects),
        }
    return stats


def save_grid(ds: Any, path: str, n: int, seed: int) -> int:
    """Save a PNG grid of ``n`` random samples with their labels; return how many were drawn."""
    import numpy as np

    from ocrkit.utils.plots import save_image_grid

    order = np.random.default_rng(seed).permutation(len(ds))
    samples = []
    for i in order:
        sample = ds.get(int(i), apply_transform=False)
        if sample is not None:
            samples.append(sample)
        if len(samples) == n:
            break
    titles = [repr(s.label) if s.label is not None else s.key for s in samples]
    save_image_grid([s.image for s in samples], titles, path)
    return len(samples)


def run_inspect(args: argparse.Namespace) -> int:
    from ocrkit.data.sources import open_dataset

    ds = open_dataset(args.spec, protocol=args.protocol, unlabeled=args.unlabeled)
    stats = dataset_stats(ds, args.max_images, args.seed)
    report = ds.filter_report()
    if args.grid:
        stats["grid"] = {"path": args.grid, "samples": save_grid(ds, args.grid, args.n, args.seed)}
    stats["report"] = report
    if args.json:
        print(json.dumps(stats, indent=2, ensure_ascii=False))
        return 0
    _print_report(report)
    if ds.labels and stats["label_lengths"]:
        print("label lengths:")
        print("\n".join(_histogram(Counter(stats["label_lengths"]))))
        chars = stats["chars"]
        print(f"characters: {len(chars)} distinct: {''.join(sorted(chars))}")
        protocol = getattr(ds, "protocol", None)
        if protocol is not None and protocol.charset is not None:
            missing = [c for c in protocol.charset.chars if c not in chars]
            covered = len(protocol.charset.chars) - len(missing)
            print(
                f"charset {protocol.charset.name}: {covered}/{len(protocol.charset.chars)} "
                f"covered; never seen: {''.join(missing) or 'none'}"
            )
    if stats["images_measured"]:
        print(f"image sizes over {stats['images_measured']} decoded images:")
        for key in ("height", "width", "aspect"):
            s = stats[key]
            print(
                f"  {key:6s} min {s['min']:.1f}  median {s['median']:.1f}  "
                f"mean {s['mean']:.1f}  max {s['max']:.1f}"
            )
    skipped = ds.filter_report()["skipped"]
    if skipped:
        print(f"skipped while measuring: {skipped}")
    if args.grid:
        print(f"wrote a grid of {stats['grid']['samples']} samples to {args.grid}")
    return 0
