"""The TABench runner's client against misbehaving servers (issue 14 item 6, issue 17 item 7)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ocrkit.tabench.client import ChatClient, RequestFailed


class Misbehaving:
    """A chat server whose replies come from ``replies`` in turn (the last one repeats).

    A reply is ``("json", obj)``, ``("drip", body, seconds_per_byte)`` or ``("big", n_bytes)``.
    """

    def __init__(self, replies) -> None:
        self.replies = list(replies)
        self.requests = 0
        self.finished_bodies = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests += 1
                reply = outer.replies[min(outer.requests, len(outer.replies)) - 1]
                with contextlib.suppress(OSError):  # the client may hang up
                    outer.send(self, reply)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def send(self, h, reply) -> None:
        kind = reply[0]
        if kind == "json":
            body = json.dumps(reply[1]).encode()
        elif kind == "drip":
            body = reply[1].encode()
        else:
            body = b'{"choices": [{"message": {"content": "' + b"x" * reply[1] + b'"}}]}'
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if kind == "drip":
            for i in range(len(body)):
                h.wfile.write(body[i : i + 1])
                h.wfile.flush()
                time.sleep(reply[2])
        else:
            h.wfile.write(body)
        self.finished_bodies += 1

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def make(replies) -> Misbehaving:
        servers.append(Misbehaving(replies))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def _answer(text):
    return ("json", {"choices": [{"message": {"role": "assistant", "content": text}}]})


@pytest.fixture
def image(tmp_path):
    from PIL import Image

    Image.new("RGB", (20, 10), "white").save(tmp_path / "img.png")
    return tmp_path / "img.png"


def test_null_content_is_a_failed_request_and_retried(serve, image):
    server = serve([_answer(None), _answer("hello")])
    client = ChatClient(server.url, "m", timeout=5, max_retries=2, backoff=0.01)
    assert client.complete(image, "read") == "hello"
    assert server.requests == 2
    server = serve([_answer(None)])
    client = ChatClient(server.url, "m", timeout=5, max_retries=1, backoff=0.01)
    with pytest.raises(RequestFailed, match="content"):
        client.complete(image, "read")
    assert server.requests == 2


def test_timeout_bounds_the_whole_request_even_a_dripping_body(serve, image):
    body = json.dumps({"choices": [{"message": {"content": "slow answer"}}]})
    server = serve([("drip", body, 0.1)])  # each byte well within the timeout, the body not
    client = ChatClient(server.url, "m", timeout=1.0, max_retries=0)
    with pytest.raises(RequestFailed, match=r"timed out after 1 s \(whole request"):
        client.complete(image, "read")
    assert server.finished_bodies == 0


def test_reply_size_is_capped_and_not_retried(serve, image):
    server = serve([("big", 3 << 20)])
    client = ChatClient(server.url, "m", timeout=30, max_retries=3, max_reply_bytes=1 << 20)
    with pytest.raises(RequestFailed, match=r"reply larger than 1048576 bytes"):
        client.complete(image, "read")
    assert server.requests == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bench(tmp_path, n=4):
    from PIL import Image

    from ocrkit.tabench.schema import Query, save_bench

    Image.new("RGB", (200, 100), "white").save(tmp_path / "img.png")
    queries = []
    for i in range(n):
        box = [10 * i, 10, 10 * i + 8, 20]
        queries.append(Query(f"r{i}", "img.png", 200, 100, "r2t", "", f"w{i}", box=box))
        queries.append(Query(f"t{i}", "img.png", 200, 100, "t2r", "", f"w{i}", boxes=[box]))
    save_bench(tmp_path / "bench.jsonl", queries)
    return tmp_path / "bench.jsonl"


def _run_args(bench, endpoint, out, *extra):
    return [
        "tabench", "run", "--bench", str(bench), "--endpoint", endpoint, "--model", "m",
        "--adapter", "json", "--out", str(out), "--retries", "3", "--backoff", "0.01", *extra,
    ]  # fmt: skip


def test_a_dead_endpoint_is_one_clear_error_before_any_query(tmp_path, capsys, caplog):
    from ocrkit.cli import main
    from ocrkit.tabench.runner import cache_path_for

    bench = _bench(tmp_path)
    dead = f"http://127.0.0.1:{_free_port()}/v1"
    out = tmp_path / "p.jsonl"
    assert main(_run_args(bench, dead, out)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach" in err[0] and "No query was sent" in err[0]
    assert "failed" not in caplog.text  # no query was tried, let alone retried
    assert not out.exists() and not cache_path_for(out).exists()
