"""Helpers shared by the ``ocrkit tabench`` sub-commands: options, bench loading, scoring."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def parse_kv(items: list[str] | None, what: str) -> dict[str, Any]:
    """KEY=VALUE options as a dict; a value is read as JSON when it parses, else kept as text."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"{what} must look like KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def add_bench_args(p: argparse.ArgumentParser) -> None:
    """The bench file and how to read it (score, run)."""
    p.add_argument("--bench", required=True, help="bench JSONL (images relative to it)")
    p.add_argument(
        "--field-map",
        help="read another release: OURS=THEIRS pairs ('image=img_path,task=type', dotted keys "
        "for nested fields) or a JSON object / .json file",
    )
    p.add_argument(
        "--coords",
        choices=["abs", "rel1000"],
        default="abs",
        help="bench box coordinates: absolute pixels or normalized to [0, 1000] (default: abs)",
    )


def add_score_args(p: argparse.ArgumentParser) -> None:
    """Scoring and report options (score, run)."""
    p.add_argument("--json", dest="json_out", help="write the scores JSON here")
    p.add_argument("--report", help="write a Markdown report here")
    p.add_argument("--plot", help="write the per-category bar chart (PNG) here")
    p.add_argument("--iou", type=float, default=0.5, help="T2R IoU threshold (default: 0.5)")
    p.add_argument(
        "--match-order",
        choices=["iou", "icdar"],
        default="iou",
        help="greedy order: 'iou' = highest-IoU pairs first (default), 'icdar' = the ICDAR2015 "
        "script's order (targets by index, first prediction over the threshold)",
    )
    p.add_argument(
        "--strict-iou",
        action="store_true",
        help="count a match only when IoU > threshold (the ICDAR2015 script) instead of >=",
    )


def add_adapter_args(p: argparse.ArgumentParser, required: bool = False) -> None:
    """The model-family adapter and its prompt set (score, run)."""
    p.add_argument(
        "--adapter",
        required=required,
        help="model family adapter (prompts, coordinates, parser): json, qwen2_vl, qwen2_5_vl, "
        "qwen3_vl, glm4v, gemini, kimi_vl, deepseek_ocr",
    )
    p.add_argument(
        "--adapter-opt",
        action="append",
        metavar="KEY=VALUE",
        help="adapter option, e.g. max_pixels=1003520 (qwen2_5_vl) or coords=rel1000 (json)",
    )
    p.add_argument(
        "--prompts",
        choices=["paper", "native"],
        default="paper",
        help="prompt set: 'paper' = the unified S1 template for every family, coordinates in its "
        "native convention (default, Q-Mask paper S1.2); 'native' = each family's own wording "
        "(ocrkit before the fidelity pass). Recorded in the scores JSON",
    )


def load_queries(args: argparse.Namespace):
    """The bench queries named by ``--bench``, ``--field-map`` and ``--coords``."""
    from ocrkit.tabench.schema import load_bench, parse_field_map

    return load_bench(args.bench, parse_field_map(args.field_map), args.coords)


def adapter_from_args(args: argparse.Namespace):
    """The adapter named by ``--adapter`` (with its options), or None."""
    if not args.adapter:
        return None
    from ocrkit.tabench.adapters import build_adapter

    options = {"prompts": args.prompts, **parse_kv(args.adapter_opt, "--adapter-opt")}
    return build_adapter(args.adapter, **options)


def finish(args: argparse.Namespace, queries, predictions, adapter, extra: dict | None = None):
    """Score, write the JSON / report / plot asked for, print the one-line summary."""
    from ocrkit.tabench.report import write_report
    from ocrkit.tabench.scoring import score
    from ocrkit.utils.io import atomic_write_json

    result = score(queries, predictions, adapter, args.iou, args.match_order, args.strict_iou)
    result.update(extra or {})
    if args.json_out:
        atomic_write_json(args.json_out, result)
    if args.report or args.plot:
        md = args.report or str(Path(args.plot).with_suffix(".md"))
        write_report(result, md, args.plot)
    r, t = result["r2t"], result["t2r"]
    print(
        f"R2T n={r['n']} Acc={r['accuracy']:.2f} | T2R n={t['n']} P={t['precision']:.2f} "
        f"R={t['recall']:.2f} F1={t['f1']:.2f} | Overall={result['overall']:.2f} | "
        f"unparsable r2t={result['unparsable']['r2t']} t2r={result['unparsable']['t2r']} | "
        f"empty r2t={result['empty']['r2t']} t2r={result['empty']['t2r']} | "
        f"missing r2t={result['missing']['r2t']} t2r={result['missing']['t2r']}"
    )
    return result


def bench_info(bench: str) -> dict[str, Any]:
    """The bench's ``.meta.json`` (T2R target shape, split, ...) when it has one."""
    from ocrkit.tabench.preset import meta_path

    path = meta_path(bench)
    if not path.is_file():
        return {}
    meta = json.loads(path.read_text(encoding="utf-8"))
    return {"bench": {k: meta.get(k) for k in ("t2r_shape", "t2r_targets", "split", "seed")}}
