"""``ocrkit tabench score``: score a predictions JSONL against a bench."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ocrkit.cli.commands.tabench.common import (
    adapter_from_args,
    add_adapter_args,
    add_bench_args,
    add_score_args,
    bench_info,
    finish,
    load_queries,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser(
        "score",
        help="score a predictions JSONL against a bench",
        description="Score a predictions JSONL against a bench: R2T text accuracy and T2R "
        "region matching (docs/tabench.md, 'Scoring'); a missing or unparsable answer scores "
        "as empty and is counted.",
    )
    add_bench_args(s)
    s.add_argument(
        "--predictions",
        required=True,
        help='JSONL: {"id", "text"} (R2T), {"id", "boxes"} (T2R, absolute pixels) or '
        '{"id", "raw"} (parsed with --adapter)',
    )
    add_adapter_args(s)
    add_score_args(s)
    s.set_defaults(func=score)


def score(args: argparse.Namespace) -> int:
    from ocrkit.tabench.jsonl import line_list
    from ocrkit.tabench.scoring import load_predictions

    queries = load_queries(args)

    predictions, bad = load_predictions(args.predictions)
    if bad:
        print(
            f"warning: {args.predictions}: {len(bad)} unreadable prediction line(s) "
            f"({line_list(bad)}); their queries score as unparsable when the id is readable, "
            "else as missing",
            file=sys.stderr,
        )
    adapter = adapter_from_args(args)
    extra: dict[str, Any] = {
        "bad_prediction_lines": len(bad),
        "bad_prediction_line_numbers": bad[:100],
        **bench_info(args.bench),
    }
    if adapter is not None:
        extra["run"] = adapter.settings()
    finish(args, queries, predictions, adapter, extra)
    return 0
