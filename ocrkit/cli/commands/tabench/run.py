"""``ocrkit tabench run``: ask a model (server or local engine) every query, cache, score."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ocrkit.cli.commands.tabench.common import (
    adapter_from_args,
    add_adapter_args,
    add_bench_args,
    add_score_args,
    bench_info,
    finish,
    load_queries,
    parse_kv,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser(
        "run",
        help="ask a model every query, cache the answers, score",
        description="Ask a model (an OpenAI-compatible endpoint, or a local engine: --engine) "
        "every query of a bench, cache its answers beside --out (a rerun asks only the missing "
        "ones) and score them (docs/tabench.md).",
    )
    add_bench_args(r)
    r.add_argument("--out", required=True, help="predictions JSONL to write (cache beside it)")
    r.add_argument("--endpoint", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    r.add_argument("--model", help="model name sent to the server")
    r.add_argument("--engine", help="local model instead of a server, e.g. rapidocr")
    r.add_argument("--engine-opt", action="append", metavar="KEY=VALUE", help="engine option")
    add_adapter_args(r)
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
    r.add_argument(
        "--max-tokens", type=int, default=512, help="longest answer asked of the model (512)"
    )
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
    add_score_args(r)
    r.set_defaults(func=run)


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


def run(args: argparse.Namespace) -> int:
    from ocrkit.tabench.client import ChatClient
    from ocrkit.tabench.local import HttpAnswerer, local_answerer
    from ocrkit.tabench.runner import run_bench, sample_queries
    from ocrkit.tabench.schema import check_image_paths

    queries = load_queries(args)
    if args.limit:
        queries = sample_queries(queries, args.limit, args.seed)
    check_image_paths(queries, args.bench, args.image_root)
    adapter = adapter_from_args(args)
    if args.engine:
        import ocrkit.tabench.engines  # noqa: F401  (registers the engines)

        options = parse_kv(args.engine_opt, "--engine-opt")
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
    run_info.update(bench_info(args.bench))
    finish(args, queries, predictions, None, run_info)
    return 1 if stats.failed else 0
