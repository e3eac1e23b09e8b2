"""``ocrkit serve``: an ocrkit model behind an OpenAI-compatible chat-completions endpoint."""

from __future__ import annotations

import argparse
import signal
import threading

EPILOG = """\
examples:
  ocrkit serve --model runs/qmask/final --port 8000
  ocrkit tabench run --bench bench.jsonl --out preds.jsonl --endpoint http://127.0.0.1:8000/v1 \\
      --model final --adapter json

Q-Mask folders answer the prompt about the image(s) (the mask's boxes come back under the
reply's "ocrkit" key); recognizer folders return the recognized text of the one image. Images
travel as data URLs; their sizes are checked from the headers before decoding. Past --max-queue
waiting requests the server answers 503 with Retry-After at once; bodies over --max-body-mb get
413; clients slower than --header-timeout / --body-timeout are disconnected / get 408. Ctrl-C or
SIGTERM stops gracefully (queued requests are answered first). See docs/serving.md."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve a Q-Mask VLM or an STR recognizer over an OpenAI-compatible API",
        description="Serve an ocrkit model folder on POST /v1/chat/completions (plus GET "
        "/v1/models and /health) for OpenAI clients and 'ocrkit tabench run --endpoint'.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model",
        required=True,
        metavar="DIR",
        help="Q-Mask or recognizer folder, or an embedded recognizer: default or tiny",
    )
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0 = any free)")
    p.add_argument(
        "--host", default="127.0.0.1", help="bind address (default 127.0.0.1, this machine only)"
    )
    p.add_argument("--name", help="model name clients send (default: the folder name)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument(
        "--max-queue", type=int, default=16, metavar="N", help="requests waiting before 503 (16)"
    )
    p.add_argument(
        "--timeout", type=float, default=600.0, metavar="S", help="seconds a request may wait (600)"
    )
    p.add_argument(
        "--max-requests",
        type=int,
        metavar="N",
        help="stop after answering N requests (smoke tests)",
    )
    p.add_argument(
        "--max-body-mb",
        type=float,
        default=32.0,
        metavar="MB",
        help="largest request body in MiB (32)",
    )
    p.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds for a request's line and headers to arrive (10)",
    )
    p.add_argument(
        "--body-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds for a body to arrive (60)",
    )
    p.add_argument(
        "--keep-alive",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds an idle connection stays open (5)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ocrkit.cli import CliError
    from ocrkit.serve import ModelServer, load_backend

    for flag in ("max_queue", "max_body_mb", "header_timeout", "body_timeout", "keep_alive"):
        if getattr(args, flag) <= 0:
            raise CliError(f"--{flag.replace('_', '-')} must be positive")
    backend = load_backend(args.model, name=args.name, device=args.device)
    try:
        server = ModelServer(
            backend,
            host=args.host,
            port=args.port,
            max_queue=args.max_queue,
            timeout=args.timeout,
            max_requests=args.max_requests,
            max_body_bytes=int(args.max_body_mb * 1024 * 1024),
            header_timeout=args.header_timeout,
            body_timeout=args.body_timeout,
            keep_alive=args.keep_alive,
        )
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    print(f"serving {backend.name!r} ({backend.kind}) on {server.url}  (Ctrl-C stops)", flush=True)

    def stop(signum: int, _frame: object) -> None:
        print(f"signal {signum}: finishing queued requests and stopping", flush=True)
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.serve_forever()
    finally:
        server.shutdown()
        for s, handler in previous.items():
            signal.signal(s, handler)
    print(f"stopped after {server.answered} answered requests")
    return 0
