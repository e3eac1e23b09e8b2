"""``ocrkit tabench report``: Markdown report and bar chart from a scores JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="Markdown report and bar chart from a scores JSON",
        description="Redraw the Markdown report and bar chart of a scores JSON written by "
        "'ocrkit tabench score' or 'run' (--json).",
    )
    p.add_argument("--scores", required=True, help="scores JSON written by score/run --json")
    p.add_argument("--out", required=True, help="Markdown file to write")
    p.add_argument("--plot", help="PNG bar chart to write (default: beside --out)")
    p.set_defaults(func=report)


def report(args: argparse.Namespace) -> int:
    from ocrkit.tabench.report import write_report

    result = json.loads(Path(args.scores).read_text(encoding="utf-8"))
    plot = args.plot or str(Path(args.out).with_suffix(".png"))
    write_report(result, args.out, plot)
    print(f"wrote {args.out} and {plot}")
    return 0
