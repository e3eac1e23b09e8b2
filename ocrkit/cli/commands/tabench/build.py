"""``ocrkit tabench build``: sample a bench JSONL from region annotations."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ocrkit.cli.commands.tabench.common import parse_kv


def add_parser(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser(
        "build",
        help="sample a bench from region annotations",
        description="Sample a TABench bench (JSONL of R2T and T2R queries) from region "
        "annotations (docs/tabench.md, 'Building').",
        epilog="example:\n  ocrkit tabench build --preset tabench-local --data ../shared/data "
        "--out bench/tabench-local.jsonl",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    b.add_argument("--out", required=True, help="bench JSONL to write")
    b.add_argument(
        "--icdar",
        action="append",
        metavar="PATH[:CATEGORY]",
        help="ICDAR-style annotations.jsonl (or its folder); category default 'scene'",
    )
    b.add_argument(
        "--funsd",
        action="append",
        metavar="DIR[:CATEGORY]",
        help="FUNSD folder (images/, annotations/); category default 'document'",
    )
    b.add_argument(
        "--jsonl",
        action="append",
        metavar="PATH[:CATEGORY]",
        help="generic region JSONL; category from each record, else this, else 'default'",
    )
    b.add_argument(
        "--quota",
        action="append",
        metavar="CATEGORY=N",
        help="total queries of a category (split evenly R2T/T2R, rounded down to a multiple "
        "of 5); default: every query the category allows",
    )
    b.add_argument(
        "--scene",
        action="append",
        metavar="DIR[:CATEGORY]",
        help="any scene-layout annotations (annotations.jsonl: image, instances) with a "
        "category, e.g. sroie_train:Receipt; category default 'scene'",
    )
    b.add_argument(
        "--label-category",
        action="append",
        metavar="LABEL=CATEGORY",
        help="regions whose 'label' is LABEL (DocBank layout classes) get their own category",
    )
    b.add_argument(
        "--t2r-shape",
        choices=["box", "polygon"],
        default="box",
        help="T2R targets: enclosing axis-aligned boxes (default, the paper's) or the annotated "
        "polygons",
    )
    b.add_argument(
        "--preset",
        metavar="NAME",
        help="a documented bench: 'tabench-local' (sources, split, quotas from its split file, "
        "data under --data)",
    )
    b.add_argument("--data", default="../shared/data", help="data root for --preset")
    b.add_argument(
        "--split",
        metavar="NAME|FILE",
        help="held-apart split: keep only its images of each source (e.g. tabench-local)",
    )
    b.add_argument(
        "--train",
        action="append",
        metavar="DIR",
        help="training images (a folder): refuse a bench image equal to one by path or hash",
    )
    b.add_argument(
        "--allow-overlap",
        action="store_true",
        help="warn instead of refusing when a bench image is also a training image",
    )
    b.add_argument("--seed", type=int, default=42, help="sampling seed (default: 42, as in S1)")
    b.set_defaults(func=build)


def _split_spec(spec: str, default: str) -> tuple[str, str]:
    """``PATH[:CATEGORY]`` (a Windows drive letter is not a category)."""
    path, sep, category = spec.rpartition(":")
    if sep and path and not os.path.exists(spec) and "/" not in category:
        return path, category
    return spec, default


def build(args: argparse.Namespace) -> int:
    from ocrkit.tabench.builder import build_bench
    from ocrkit.tabench.preset import SourceSpec, bench_meta, gather, meta_path, preset_specs
    from ocrkit.tabench.schema import save_bench
    from ocrkit.tabench.split import load_split
    from ocrkit.utils.io import atomic_write_json

    labels = {k: str(v) for k, v in parse_kv(args.label_category, "--label-category").items()}
    specs = []
    for kind, items, default in (
        ("scene", (args.icdar or []) + (args.scene or []), "scene"),
        ("funsd", args.funsd or [], "document"),
        ("jsonl", args.jsonl or [], "default"),
    ):
        for spec in items:
            path, cat = _split_spec(spec, default)
            specs.append(SourceSpec(kind, path, cat, labels))
    quotas = {k: int(v) for k, v in parse_kv(args.quota, "--quota").items()}
    split = load_split(args.split or args.preset) if (args.split or args.preset) else None
    train = [Path(t) for t in args.train or []]
    if args.preset:
        if specs:
            raise ValueError("--preset names its own sources: drop --scene/--icdar/--funsd/--jsonl")
        specs, preset_train, preset_quotas = preset_specs(split, args.data)
        train += preset_train
        quotas = {**preset_quotas, **quotas}
    if not specs:
        raise ValueError("give at least one of --scene, --icdar, --funsd, --jsonl (or --preset)")
    images, train_images = gather(specs, split, train, args.allow_overlap)
    queries = build_bench(images, args.out, quotas, seed=args.seed, t2r_shape=args.t2r_shape)
    save_bench(args.out, queries)
    meta = bench_meta(specs, split, args.t2r_shape, args.seed, quotas, len(train_images))
    counts: dict[tuple[str, str], int] = {}
    for q in queries:
        counts[(q.category, q.task)] = counts.get((q.category, q.task), 0) + 1
    meta["counts"] = {f"{c}/{t}": n for (c, t), n in sorted(counts.items())}
    meta["images"] = len({q.image for q in queries})
    atomic_write_json(meta_path(args.out), meta)
    print(f"wrote {len(queries)} queries to {args.out} (T2R targets: {args.t2r_shape})")
    if train_images:
        print(f"  no overlap with {len(train_images)} training images (path and SHA-256)")
    for (cat, task), n in sorted(counts.items()):
        print(f"  {cat:<12} {task}: {n}")
    root = _image_root_hint(args.out, queries)
    if root:
        print(f"  images lie outside the bench folder: run it with --image-root {root}")
    return 0


def _image_root_hint(bench: str, queries) -> str | None:
    """The folder holding every image, when some lie outside the bench's own folder."""
    folder = os.path.realpath(Path(bench).parent)
    paths = {os.path.realpath(Path(bench).parent / q.image) for q in queries}
    if not paths or all(Path(p).is_relative_to(folder) for p in paths):
        return None
    return os.path.commonpath([os.path.dirname(p) for p in paths])
