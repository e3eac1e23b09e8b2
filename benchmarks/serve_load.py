"""``ocrkit serve`` under load on loopback: a burst of clients, decompression bombs, slow clients.

The server runs in a child process (this script with ``--child``) so that its memory is measured
alone (``VmHWM``, the kernel's peak resident set). Phases, each bounded, the run stops by itself:

1. reference: one client, sequential keep-alive requests (the latency without contention);
2. bombs: 10 clients post a 20000x20000 PNG (~380 KiB, 8-bit gray) at once; all must get 413;
   the reference for memory is one such bomb decoded by ``decode_image`` in its own process
   (what the stdlib server did before checking the size);
3. load: ``--clients`` threads, each opening one keep-alive connection at the same instant and
   sending ``--requests`` requests; a 503/429 is counted, waited out (its ``Retry-After``, with
   jitter) and retried; a connection error is counted as a reset. 10 bomb senders run alongside;
4. slow clients: ``--lorises`` sockets send half a request line and stall; a normal request is
   timed while they wait; the server must close them all after ``--header-timeout``;
5. a 50 MB body (413 expected) and 200000-deep JSON (400 expected).

Usage: ``OMP_NUM_THREADS=1 python benchmarks/serve_load.py [--model sleep:0.02|tiny|DIR]
[--clients 200] [--requests 2]``. ``sleep:S`` is a stub model answering after S seconds (a GPU
model whose compute leaves the CPU free); ``tiny`` is the embedded recognizer.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from pathlib import Path

BOMB_SIZE = 20000


def png_bomb(width: int = BOMB_SIZE, height: int = BOMB_SIZE, bit_depth: int = 8) -> bytes:
    """A valid gray PNG of zeros: a few hundred KiB that decode to ``width*height*3`` bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    row = b"\x00" * (1 + (width * bit_depth + 7) // 8)  # filter byte + packed samples
    packer = zlib.compressobj(9)
    rows = 256
    idat = b"".join(packer.compress(row * rows) for _ in range(height // rows))
    idat += packer.compress(row * (height % rows)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def chat_body(image: bytes, model: str = "") -> bytes:
    url = "data:image/png;base64," + base64.b64encode(image).decode()
    content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "read"}]
    return json.dumps({"model": model, "messages": [{"role": "user", "content": content}]}).encode()


def word_png() -> bytes:
    import cv2
    import numpy as np

    image = np.full((32, 128, 3), 255, np.uint8)
    cv2.putText(image, "HELLO", (4, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 2)
    return cv2.imencode(".png", image)[1].tobytes()


def proc_status(pid: int | str, key: str) -> int:
    """A field of /proc/PID/status in KiB (or a count, for Threads)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))] if values else float("nan")


# --- the server child -----------------------------------------------------------------------


class SleepBackend:
    """A stub model: answers after a fixed time without using the CPU (like a GPU model)."""

    kind = "stub"

    def __init__(self, seconds: float) -> None:
        self.name, self.seconds = "sleep", seconds

    def answer(self, request):
        time.sleep(self.seconds)
        return "HELLO", {}


def child(args: argparse.Namespace) -> None:
    from ocrkit.serve import ModelServer, load_backend

    if args.model.startswith("sleep:"):
        backend = SleepBackend(float(args.model.split(":", 1)[1]))
    else:
        path = Path(args.model)
        if not path.is_dir():
            from ocrkit.models.default import embedded_model_dir

            path = embedded_model_dir(args.model)
        backend = load_backend(path)
    server = ModelServer(backend, port=0, header_timeout=args.header_timeout)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(server.url, backend.name, flush=True)
    server.serve_forever()
    print(f"answered {server.answered}", flush=True)


# --- the clients ----------------------------------------------------------------------------


class Client:
    """One keep-alive connection that retries 503/429 after ``Retry-After``."""

    def __init__(self, host: str, port: int, tally: Counter, deadline: float) -> None:
        self.host, self.port, self.tally, self.deadline = host, port, tally, deadline
        self.conn: http.client.HTTPConnection | None = None

    def send(self, payload: bytes, latencies: list[float] | None = None) -> int | None:
        """The final status of one request (after retries); None when the deadline passed."""
        while time.monotonic() < self.deadline:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            start = time.perf_counter()
            try:
                self.conn.request("POST", "/v1/chat/completions", payload)
                resp = self.conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException) as exc:
                self.tally[f"error {type(exc).__name__}"] += 1
                self.conn.close()
                self.conn = None
                continue
            elapsed = time.perf_counter() - start
            if resp.status in (429, 503):
                retry = resp.getheader("Retry-After")
                self.tally[f"{resp.status} retry-after={retry is not None}"] += 1
                time.sleep(float(retry or 1) * random.uniform(0.5, 1.5))
                continue
            self.tally[str(resp.status)] += 1
            if latencies is not None:
                latencies.append(elapsed)
            if resp.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
            return resp.status
        return None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def run_clients(n: int, work, limit: float) -> float:
    """Start ``n`` threads on ``work(i)`` at one instant; the wall time until all finished."""
    barrier = threading.Barrier(n + 1)

    def body(i: int) -> None:
        barrier.wait()
        work(i)

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join(limit)
    return time.perf_counter() - start


def decode_reference(bomb: bytes) -> int:
    """Peak RSS growth (KiB) of decoding one bomb with ocrkit's decoder, in a fresh process."""
    code = (
        "import sys; from pathlib import Path\n"
        "from ocrkit.data.image_io import decode_image\n"
        "def hwm():\n"
        "    s = Path('/proc/self/status').read_text()\n"
        "    return int(s.split('VmHWM:')[1].split()[0])\n"
        "base = hwm(); image = decode_image(sys.stdin.buffer.read()); print(hwm() - base)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=bomb, capture_output=True, check=True, timeout=300
    )
    return int(out.stdout.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="sleep:0.02", help="sleep:SECONDS, tiny, default or DIR")
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--requests", type=int, default=2, help="requests per client")
    ap.add_argument("--bombs", type=int, default=10)
    ap.add_argument("--lorises", type=int, default=300)
    ap.add_argument("--header-timeout", type=float, default=2.0)
    ap.add_argument("--deadline", type=float, default=240.0, help="seconds for the load phase")
    ap.add_argument("--no-reference", action="store_true", help="skip decoding one bomb")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    import starlette
    import uvicorn

    from ocrkit.utils.hardware import cpu_model

    bomb, word = png_bomb(), word_png()
    print(
        f"# serve_load: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"uvicorn {uvicorn.__version__}, starlette {starlette.__version__}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, model {args.model}"
    )
    print(f"bomb: {BOMB_SIZE}x{BOMB_SIZE} 8-bit gray PNG, {len(bomb) / 1024:.0f} KiB")
    ref_kib = None if args.no_reference else decode_reference(bomb)
    if ref_kib is not None:
        print(f"reference: decoding one bomb (decode_image) costs +{ref_kib / 1024:.0f} MiB")

    cmd = [sys.executable, __file__, "--child", "--model", args.model]
    cmd += ["--header-timeout", str(args.header_timeout)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        url, name = proc.stdout.readline().split()
        host, port = url.removeprefix("http://").removesuffix("/v1").rsplit(":", 1)
        port_i = int(port)
        payload, bomb_payload = chat_body(word, name), chat_body(bomb, name)
        report(args, proc.pid, host, port_i, payload, bomb_payload, ref_kib)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
        print(f"server exit {proc.returncode}: {out.strip()}")


def report(args, pid, host, port, payload, bomb_payload, ref_kib) -> None:
    far = time.monotonic() + args.deadline
    tally: Counter = Counter()

    # 1. reference latency, one client
    single: list[float] = []
    client = Client(host, port, tally, far)
    for _ in range(20):
        client.send(payload, single)
    client.close()
    idle_kib = proc_status(pid, "VmHWM")
    print(
        f"1 client: p50 {percentile(single, 50) * 1e3:.1f} ms, peak RSS {idle_kib / 1024:.0f} MiB"
    )

    # 2. bombs alone
    bomb_tally: Counter = Counter()
    run_clients(
        args.bombs, lambda i: Client(host, port, bomb_tally, far).send(bomb_payload), args.deadline
    )
    bombs_kib = proc_status(pid, "VmHWM")
    line = f"{args.bombs} bombs at once: {dict(bomb_tally)}; peak RSS {bombs_kib / 1024:.0f} MiB "
    line += f"(+{(bombs_kib - idle_kib) / 1024:.0f} MiB)"
    if ref_kib:
        ratio = (bombs_kib - idle_kib) / (args.bombs * ref_kib)
        line += f"; ratio to {args.bombs} decoded bombs (+{args.bombs * ref_kib / 1024:.0f} MiB) "
        line += f"{ratio:.4f}"
    print(line)

    # 3. the burst of clients, with bombs in flight alongside
    tally.clear()
    latencies: list[float] = []
    stop = threading.Event()

    def bomber(i: int) -> None:
        c = Client(host, port, bomb_tally, far)
        while not stop.is_set():
            c.send(bomb_payload)

    bombers = [threading.Thread(target=bomber, args=(i,), daemon=True) for i in range(args.bombs)]
    for t in bombers:
        t.start()

    def load(i: int) -> None:
        c = Client(host, port, tally, far)
        for _ in range(args.requests):
            c.send(payload, latencies)
        c.close()

    bomb_tally.clear()
    wall = run_clients(args.clients, load, args.deadline)
    stop.set()
    for t in bombers:
        t.join(60)
    load_kib = proc_status(pid, "VmHWM")
    resets = sum(v for k, v in tally.items() if k.startswith("error"))
    done = tally["200"]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print(
        f"{args.clients} clients x {args.requests} requests: {done} answered in {wall:.1f} s "
        f"({done / wall:.1f}/s), {resets} connection errors, outcomes {dict(tally)}"
    )
    print(
        f"  latency of answered requests: p50 {p50 * 1e3:.0f} ms, p99 {p99 * 1e3:.0f} ms "
        f"(p50 ratio to 1 client: {p50 / percentile(single, 50):.1f}); "
        f"bombs alongside: {dict(bomb_tally)}; peak RSS {load_kib / 1024:.0f} MiB"
    )

    # 4. slow clients
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHo"
    lorises = []
    for _ in range(args.lorises):
        s = socket.create_connection((host, port))
        s.sendall(head)
        lorises.append(s)
    threads_during = proc_status(pid, "Threads")
    one: list[float] = []
    Client(host, port, Counter(), far).send(payload, one)
    closed = 0
    for s in lorises:
        s.settimeout(args.header_timeout + 30)
        try:
            closed += s.recv(1) == b""
        except OSError:
            closed += 1
        s.close()
    print(
        f"{args.lorises} stalled clients: a normal request took {one[0] * 1e3:.0f} ms, server "
        f"threads {threads_during}, {closed}/{args.lorises} closed by the server"
    )

    # 5. oversize body, deep JSON
    checks = {}
    for what, data in (
        ("50 MB body", b'{"x": "' + b"x" * (50 * 1024 * 1024) + b'"}'),
        ("deep JSON", b"[" * 200_000 + b"]" * 200_000),
    ):
        conn = http.client.HTTPConnection(host, port, timeout=120)
        try:
            conn.request("POST", "/v1/chat/completions", data)
            checks[what] = conn.getresponse().status
        except OSError as exc:
            checks[what] = type(exc).__name__
        conn.close()
    print(f"hostile bodies: {checks}; final peak RSS {proc_status(pid, 'VmHWM') / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
