"""``ocrkit tabench``: build, score and run text-anchoring benchmarks (R2T / T2R)."""

from __future__ import annotations

import argparse

from ocrkit.cli.commands.tabench import build, report, run, score

DESCRIPTION = """\
TABench (Q-Mask paper, Section 4 and Supplementary S1): Region-to-Text (R2T) and
Text-to-Region (T2R) queries over images.

  build   sample a bench JSONL from region annotations (scene JSONL, FUNSD, generic JSONL);
          --preset tabench-local builds the documented local bench from held-apart images
  score   score a predictions JSONL: Acc_R2T, T2R P/R/F1 (IoU >= 0.5, one-to-one), Overall
  run     ask a model (OpenAI-compatible server or local engine) every query, then score
  report  Markdown report and per-category bar chart from a scores JSON

See docs/tabench.md."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tabench",
        help="build, score and run text-anchoring benchmarks (R2T / T2R)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="tabench_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
    build.add_parser(sub)
    score.add_parser(sub)
    run.add_parser(sub)
    report.add_parser(sub)
