"""TABench runner throughput against a local OpenAI-compatible server with N requests in flight.

The server (loopback, started here) answers every request after a fixed latency, like a model
server whose GPU is never the bottleneck; the reference is the same run with 1 request in
flight. Prints queries/s, the ratio to the reference and the hardware.
Usage: ``python benchmarks/tabench_runner.py [--queries 200] [--latency 0.05] [--workers 1 4 16]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from PIL import Image

from ocrkit.tabench.adapters import build_adapter
from ocrkit.tabench.client import ChatClient
from ocrkit.tabench.local import HttpAnswerer
from ocrkit.tabench.runner import run_bench
from ocrkit.tabench.schema import Query, load_bench, save_bench
from ocrkit.utils.hardware import cpu_model


def serve(latency: float) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(latency)
            data = json.dumps({"choices": [{"message": {"content": "[[1, 2, 3, 4]]"}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--latency", type=float, default=0.05, help="server seconds per request")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 4, 16])
    args = ap.parse_args()
    os.environ.setdefault("OCRKIT_PROGRESS", "0")
    httpd = serve(args.latency)
    url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    print(
        f"hardware: {cpu_model()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; {args.queries} queries, server latency "
        f"{args.latency * 1e3:.0f} ms"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        Image.new("RGB", (640, 480), "white").save(root / "img.jpg")
        qs = [
            Query(f"t{i}", "img.jpg", 640, 480, "t2r", "", f"w{i}", boxes=[[1, 2, 3, 4]])
            for i in range(args.queries)
        ]
        save_bench(root / "bench.jsonl", qs)
        queries = load_bench(root / "bench.jsonl")
        ref = None
        for n in args.workers:
            answerer = HttpAnswerer(ChatClient(url, "bench", timeout=30), build_adapter("json"))
            t = time.perf_counter()
            _, stats = run_bench(queries, answerer, root / f"p{n}.jsonl", workers=n)
            dt = time.perf_counter() - t
            assert stats.answered == args.queries and stats.failed == 0
            qps = args.queries / dt
            ref = ref or qps
            print(
                f"workers={n:<3} {qps:8.1f} q/s  ({dt:.2f} s)  ratio to workers="
                f"{args.workers[0]}: {qps / ref:.2f}x  (ideal {min(n, args.queries) / args.workers[0]:.0f}x)"
            )
    httpd.shutdown()


if __name__ == "__main__":
    main()
