"""``ocrkit tabench``: build, score and run text-anchoring benchmarks (R2T / T2R)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

DESCRIPTION = """\
TABench (Q-Mask paper, Section 4 and Supplementary S1): Region-to-Text (R2T) and
Text-to-Region (T2R) queries over images.

  build   sample a bench JSONL from region annotations (scene JSONL, FUNSD, generic JSONL);
          --preset tabench-local builds the documented local bench from held-apart images
  score   score a predictions JSONL: Acc_R2T, T2R P/R/F1 (IoU >= 0.5, one-to-one), Overall
  run     ask a model (OpenAI-compatible server or local engine) every query, then score
  report  Markdown report and per-category bar chart from a scores JSON

See docs/tabench.md."""


def _kv(items: list[str] | None, what: str) -> dict[str, Any]:
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


def _bench_args(p: argparse.ArgumentParser) -> None:
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


def _score_args(p: argparse.ArgumentParser) -> None:
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


def _adapter_args(p: argparse.ArgumentParser, required: bool = False) -> None:
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


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tabench",
        help="build, score and run text-anchoring benchmarks (R2T / T2R)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="tabench_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: parser.print_help() or 2)

    b = sub.add_parser("build", help="sample a bench from region annotations")
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
    b.set_defaults(func=_build)

    s = sub.add_parser("score", help="score a predictions JSONL against a bench")
    _bench_args(s)
    s.add_argument(
        "--predictions",
        required=True,
        help='JSONL: {"id", "text"} (R2T), {"id", "boxes"} (T2R, absolute pixels) or '
        '{"id", "raw"} (parsed with --adapter)',
    )
    _adapter_args(s)
    _score_args(s)
    s.set_defaults(func=_score)

    r = sub.add_parser("run", help="ask a model every query, cache the answers, score")
    _bench_args(r)
    r.add_argument("--out", required=True, help="predictions JSONL to write (cache beside it)")
    r.add_argument("--endpoint", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    r.add_argument("--model", help="model name sent to the server")
    r.add_argument("--engine", help="local model instead of a server, e.g. rapidocr")
    r.add_argument("--engine-opt", action="append", metavar="KEY=VALUE", help="engine option")
    _adapter_args(r)
    r.add_argument("--workers", type=int, default=8, help="requests in flight (default: 8)")
    r.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds per request, the whole request (connect, headers, body) (default: 120)",
    )
    r.add_argument(
        "--max-reply-mib",
        type=float,
        default=8.0,
        help="largest reply accepted, in MiB; a larger one fails the query (default: 8)",
    )
    r.add_argument("--retries", type=int, default=4, help="retries on 429/5xx/timeouts")
    r.add_argument("--backoff", type=float, default=1.0, help="first retry delay in seconds")
    r.add_argument("--max-tokens", type=int, default=512)
    r.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        help="environment variable holding the API key, if any (default: OPENAI_API_KEY)",
    )
    r.add_argument(
        "--limit",
        type=int,
        help="only N queries (smoke test), drawn across every category and both directions",
    )
    r.add_argument("--seed", type=int, default=42, help="--limit sampling seed (default: 42)")
    r.add_argument(
        "--image-root",
        metavar="DIR",
        help="allow bench images anywhere under DIR (default: only under the bench file's "
        "folder; absolute paths and paths leaving it are refused)",
    )
    _score_args(r)
    r.set_defaults(func=_run)

    p = sub.add_parser("report", help="Markdown report and bar chart from a scores JSON")
    p.add_argument("--scores", required=True, help="scores JSON written by score/run --json")
    p.add_argument("--out", required=True, help="Markdown file to write")
    p.add_argument("--plot", help="PNG bar chart to write (default: beside --out)")
    p.set_defaults(func=_report)


def _split_spec(spec: str, default: str) -> tuple[str, str]:
    """``PATH[:CATEGORY]`` (a Windows drive letter is not a category)."""
    path, sep, category = spec.rpartition(":")
    if sep and path and not os.path.exists(spec) and "/" not in category:
        return path, category
    return spec, default


def _build(args: argparse.Namespace) -> int:
    from ocrkit.tabench.builder import build_bench
    from ocrkit.tabench.preset import SourceSpec, bench_meta, gather, meta_path, preset_specs
    from ocrkit.tabench.schema import save_bench
    from ocrkit.tabench.split import load_split
    from ocrkit.utils.io import atomic_write_json

    labels = {k: str(v) for k, v in _kv(args.label_category, "--label-category").items()}
    specs = []
    for kind, items, default in (
        ("scene", (args.icdar or []) + (args.scene or []), "scene"),
        ("funsd", args.funsd or [], "document"),
        ("jsonl", args.jsonl or [], "default"),
    ):
        for spec in items:
            path, cat = _split_spec(spec, default)
            specs.append(SourceSpec(kind, path, cat, labels))
    quotas = {k: int(v) for k, v in _kv(args.quota, "--quota").items()}
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


def _load(args: argparse.Namespace):
    from ocrkit.tabench.schema import load_bench, parse_field_map

    return load_bench(args.bench, parse_field_map(args.field_map), args.coords)


def _adapter(args: argparse.Namespace):
    if not args.adapter:
        return None
    from ocrkit.tabench.adapters import build_adapter

    options = {"prompts": args.prompts, **_kv(args.adapter_opt, "--adapter-opt")}
    return build_adapter(args.adapter, **options)


def _finish(args: argparse.Namespace, queries, predictions, adapter, extra: dict | None = None):
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


def _bench_meta(bench: str) -> dict[str, Any]:
    """The bench's ``.meta.json`` (T2R target shape, split, ...) when it has one."""
    from ocrkit.tabench.preset import meta_path

    path = meta_path(bench)
    if not path.is_file():
        return {}
    meta = json.loads(path.read_text(encoding="utf-8"))
    return {"bench": {k: meta.get(k) for k in ("t2r_shape", "t2r_targets", "split", "seed")}}


def _score(args: argparse.Namespace) -> int:
    from ocrkit.tabench.jsonl import line_list
    from ocrkit.tabench.scoring import load_predictions

    queries = _load(args)

    predictions, bad = load_predictions(args.predictions)
    if bad:
        print(
            f"warning: {args.predictions}: {len(bad)} unreadable prediction line(s) "
            f"({line_list(bad)}); their queries score as unparsable when the id is readable, "
            "else as missing",
            file=sys.stderr,
        )
    adapter = _adapter(args)
    extra: dict[str, Any] = {
        "bad_prediction_lines": len(bad),
        "bad_prediction_line_numbers": bad[:100],
        **_bench_meta(args.bench),
    }
    if adapter is not None:
        extra["run"] = adapter.settings()
    _finish(args, queries, predictions, adapter, extra)
    return 0


def _check_engine_options(name: str, options: dict) -> None:
    """Every required option of engine ``name`` is given, else one line naming them."""
    import inspect

    from ocrkit.tabench.local import ENGINES

    factory = ENGINES.get(name)
    required = [
        p.name
        for p in inspect.signature(factory).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    missing = [n for n in required if n not in options]
    if missing:
        given = " ".join(f"--engine-opt {n}=..." for n in missing)
        hint = " (a Q-Mask folder from 'ocrkit train')" if name == "qmask" else ""
        from ocrkit.cli import CliError

        raise CliError(f"--engine {name} needs {given}{hint}")


def _run(args: argparse.Namespace) -> int:
    from ocrkit.tabench.client import ChatClient
    from ocrkit.tabench.local import HttpAnswerer, local_answerer
    from ocrkit.tabench.runner import run_bench, sample_queries
    from ocrkit.tabench.schema import check_image_paths

    queries = _load(args)
    if args.limit:
        queries = sample_queries(queries, args.limit, args.seed)
    check_image_paths(queries, args.bench, args.image_root)
    adapter = _adapter(args)
    if args.engine:
        import ocrkit.tabench.engines  # noqa: F401  (registers the engines)

        options = _kv(args.engine_opt, "--engine-opt")
        _check_engine_options(args.engine, options)
        answerer = local_answerer(args.engine, adapter, **options)
    else:
        if not (args.endpoint and args.model and adapter):
            raise ValueError("run needs --endpoint, --model and --adapter (or --engine)")
        client = ChatClient(
            endpoint=args.endpoint,
            model=args.model,
            timeout=args.timeout,
            max_retries=args.retries,
            backoff=args.backoff,
            max_tokens=args.max_tokens,
            api_key=os.environ.get(args.api_key_env) or None,
            max_reply_bytes=int(args.max_reply_mib * (1 << 20)),
        )
        answerer = HttpAnswerer(client, adapter)
    # queries a family has no prompt for (DeepSeek-OCR's R2T, paper Table 1 "-") are not sent
    # and score as empty; grouped by image so page-level engines read each page once
    asked = [q for q in queries if adapter is None or adapter.asks(q)]
    skipped = len(queries) - len(asked)
    if skipped:
        print(f"{skipped} queries not asked: adapter {adapter.name!r} has no prompt for them")
    asked.sort(key=lambda q: q.image)
    predictions, stats = run_bench(asked, answerer, args.out, workers=args.workers)
    print(
        f"{stats.total} queries: {stats.cached} from cache, {stats.answered} answered, "
        f"{stats.failed} failed"
    )
    run_info: dict[str, Any] = {"run": {"answerer": answerer.name, "failed": stats.failed}}
    if adapter is not None:
        run_info["run"].update(adapter.settings())
        run_info["run"]["not_asked"] = {
            t: sum(q.task == t and not adapter.asks(q) for q in queries) for t in ("r2t", "t2r")
        }
    run_info.update(_bench_meta(args.bench))
    _finish(args, queries, predictions, None, run_info)
    return 1 if stats.failed else 0


def _report(args: argparse.Namespace) -> int:
    from ocrkit.tabench.report import write_report

    result = json.loads(Path(args.scores).read_text(encoding="utf-8"))
    plot = args.plot or str(Path(args.out).with_suffix(".png"))
    write_report(result, args.out, plot)
    print(f"wrote {args.out} and {plot}")
    return 0
