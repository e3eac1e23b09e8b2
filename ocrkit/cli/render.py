"""Arguments and entry point of ``ocrkit data render`` (wired up by ``ocrkit.cli.commands.data``;
the renderer itself is :mod:`ocrkit.data.render`).

Example: ``ocrkit data render --out lmdb/synth_en --num 100000 --lang mixed --workers 8``.
"""

from __future__ import annotations

import argparse
import time


def add_render_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the renderer's options to ``parser``."""
    parser.add_argument("--out", required=True, help="output LMDB folder")
    parser.add_argument("--num", type=int, default=1000, help="images to render (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument(
        "--lang",
        default="en",
        choices=["en", "zh", "mixed"],
        help="word language; zh/mixed need a CJK font (pip install noto-cjk-sans-otc)",
    )
    parser.add_argument(
        "--workers", type=int, default=0, help="render processes (default 0: in this process)"
    )
    parser.add_argument(
        "--font-dir", action="append", default=[], help="extra font folder (repeatable)"
    )
    parser.add_argument(
        "--no-system-fonts", action="store_true", help="ignore fonts under /usr/share/fonts"
    )
    parser.add_argument("--background-dir", help="folder of real images to crop backgrounds from")
    parser.add_argument(
        "--no-effects",
        action="store_true",
        help="plain rendering: solid background, no geometry, blur, noise or JPEG",
    )
    parser.add_argument(
        "--font-size",
        type=int,
        nargs=2,
        default=[32, 64],
        metavar=("MIN", "MAX"),
        help="font size range in pixels (default 32 64)",
    )
    parser.add_argument("--vocab-size", type=int, default=50_000, help="wordfreq words to use")
    parser.add_argument(
        "--random-ratio", type=float, default=0.3, help="share of random strings (default 0.3)"
    )
    parser.add_argument("--format", default=".png", choices=[".png", ".jpg"], help="image encoding")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")


def run_render(args: argparse.Namespace) -> int:
    """Render ``args.num`` images into ``args.out``; print the count and images/s. Returns 0."""
    from pathlib import Path

    from ocrkit.cli import CliError
    from ocrkit.data.render.effects import EffectConfig
    from ocrkit.data.render.export import render_to_lmdb
    from ocrkit.data.render.fonts import discover_fonts
    from ocrkit.data.render.renderer import RenderConfig
    from ocrkit.data.render.words import WordConfig

    if Path(args.out).exists() and not args.overwrite:
        raise CliError(f"{args.out} exists; pass --overwrite to replace it")
    words = WordConfig(lang=args.lang, vocab_size=args.vocab_size, random_ratio=args.random_ratio)
    effects = EffectConfig.none() if args.no_effects else EffectConfig()
    config = RenderConfig(font_size=tuple(args.font_size), effects=effects)
    fonts = discover_fonts(args.font_dir, system=not args.no_system_fonts)
    start = time.perf_counter()
    count = render_to_lmdb(
        args.out,
        args.num,
        seed=args.seed,
        words=words,
        num_workers=args.workers,
        fonts=fonts,
        config=config,
        background_dir=args.background_dir,
        image_format=args.format,
        overwrite=args.overwrite,
    )
    seconds = time.perf_counter() - start
    print(
        f"wrote {count} images to {args.out} in {seconds:.1f} s "
        f"({count / max(seconds, 1e-9):.1f} images/s, {len(fonts)} fonts, {args.workers} workers)"
    )
    return 0
