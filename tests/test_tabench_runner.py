"""The runner against a real OpenAI-compatible HTTP server on loopback (started here).

The server reads the S1 prompt, answers with the right transcript or box, and misbehaves on
request: HTTP 500s, a 429, a stall past the client timeout, a 400, or a slow reply (for the
kill-and-resume case).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from ocrkit.tabench.adapters import build_adapter
from ocrkit.tabench.client import ChatClient
from ocrkit.tabench.local import HttpAnswerer
from ocrkit.tabench.runner import cache_path_for, run_bench
from ocrkit.tabench.schema import Query, load_bench, save_bench
from ocrkit.tabench.scoring import score

WORDS = ["alpha", "beta", "gamma", "delta", "eps", "zeta"]


def make_bench(tmp_path) -> list[Query]:
    Image.new("RGB", (200, 100), "white").save(tmp_path / "img.png")
    queries = []
    for i, word in enumerate(WORDS):
        box = [10 * i, 10, 10 * i + 8, 20]
        queries.append(Query(f"r{i}", "img.png", 200, 100, "r2t", "", word, box=box))
        queries.append(Query(f"t{i}", "img.png", 200, 100, "t2r", "", word, boxes=[box]))
    save_bench(tmp_path / "bench.jsonl", queries)
    return load_bench(tmp_path / "bench.jsonl")


class Server:
    """``plan[word]``: list of behaviours for the first attempts ('500', '429', 'stall', '400')."""

    def __init__(self, plan=None, delay: float = 0.0) -> None:
        self.plan = {k: list(v) for k, v in (plan or {}).items()}
        self.delay = delay
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.handle(self, body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def handle(self, h: BaseHTTPRequestHandler, body: dict) -> None:
        content = body["messages"][0]["content"]
        assert content[0]["image_url"]["url"].startswith("data:image/png;base64,")
        prompt = content[1]["text"]
        m = re.search(r"\[(\d+), (\d+), (\d+), (\d+)\]", prompt)
        if m:
            word = WORDS[int(m.group(1)) // 10]
            answer = word
        else:
            word = re.search(r'"(.*)"', prompt).group(1)
            i = WORDS.index(word)
            answer = json.dumps([{"bbox_2d": [10 * i, 10, 10 * i + 8, 20]}])
        key = ("r2t:" if m else "t2r:") + word
        with self.lock:
            self.requests[key] += 1
            todo = self.plan.get(key, [])
            action = todo.pop(0) if todo else "ok"
        if action in {"500", "429", "400"}:
            h.send_response(int(action))
            if action == "429":
                h.send_header("Retry-After", "0")
            h.end_headers()
            h.wfile.write(b"error")
            return
        if action == "stall":
            time.sleep(3.0)  # past the 2 s client timeout
        elif self.delay:
            time.sleep(self.delay)
        reply = {"choices": [{"message": {"role": "assistant", "content": answer}}]}
        data = json.dumps(reply).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server_factory():
    servers = []

    def make(**kwargs) -> Server:
        servers.append(Server(**kwargs))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def answerer(url: str, **kwargs) -> HttpAnswerer:
    opts = {"timeout": 2.0, "max_retries": 3, "backoff": 0.01, **kwargs}
    return HttpAnswerer(ChatClient(url, "fake-model", **opts), build_adapter("json"))


def test_retries_timeouts_and_failures(tmp_path, server_factory):
    queries = make_bench(tmp_path)
    plan = {
        "r2t:alpha": ["500", "500"],  # two 500s, then an answer
        "t2r:beta": ["429"],
        "t2r:gamma": ["stall"],  # one reply slower than the timeout
        "r2t:delta": ["400"],  # not retried: fails at once
        "t2r:eps": ["500"] * 10,  # never answered: fails after 1 + 3 attempts
    }
    server = server_factory(plan=plan)
    preds, stats = run_bench(queries, answerer(server.url), tmp_path / "p.jsonl", workers=3)
    assert (stats.total, stats.answered, stats.failed, stats.cached) == (12, 10, 2, 0)
    assert server.requests["r2t:alpha"] == 3
    assert server.requests["t2r:beta"] == 2
    assert server.requests["t2r:gamma"] == 2
    assert server.requests["r2t:delta"] == 1
    assert server.requests["t2r:eps"] == 4
    assert set(preds) == {q.id for q in queries} - {"r3", "t4"}
    result = score(queries, preds)
    assert result["r2t"]["correct"] == 5 and result["missing"] == {"r2t": 1, "t2r": 1}
    assert (result["t2r"]["tp"], result["t2r"]["fp"], result["t2r"]["fn"]) == (5, 0, 1)
    # a second run asks only the two failed queries again
    server.plan.clear()
    before = sum(server.requests.values())
    preds, stats = run_bench(queries, answerer(server.url), tmp_path / "p.jsonl", workers=3)
    assert (stats.cached, stats.answered, stats.failed) == (10, 2, 0)
    assert sum(server.requests.values()) - before == 2
    assert score(queries, preds)["overall"] == pytest.approx(100.0)


def test_kill_and_resume(tmp_path, server_factory):
    queries = make_bench(tmp_path)
    server = server_factory(delay=0.15)
    out = tmp_path / "p.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "ocrkit",
        "tabench",
        "run",
        "--bench",
        str(tmp_path / "bench.jsonl"),
        "--endpoint",
        server.url,
        "--model",
        "fake-model",
        "--adapter",
        "json",
        "--workers",
        "1",
        "--out",
        str(out),
        "--retries",
        "0",
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OCRKIT_PROGRESS": "0"},
    )
    cache = cache_path_for(out)
    try:
        for _ in range(600):  # poll (no timing assertion): until some answers are cached
            if cache.exists() and cache.read_text().count("\n") >= 3:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL and not out.exists()
    done = cache.read_text().count("\n")
    assert 3 <= done < len(queries)
    with open(cache, "a") as f:  # a torn write, as if the kill had landed mid line
        f.write('{"key": "abc", "id": "r0", "ra')
    asked_before = sum(server.requests.values())
    preds, stats = run_bench(queries, answerer(server.url, timeout=30), out, workers=2)
    assert stats.cached == done and stats.answered == len(queries) - done
    # The killed run (1 worker) may have had one request in flight, which the server can count
    # after the snapshot above; re-asking any of the `done` cached queries would add >= 3.
    asked = sum(server.requests.values()) - asked_before
    assert len(queries) - done <= asked <= len(queries) - done + 1
    assert score(queries, preds)["overall"] == pytest.approx(100.0)
    # a third run asks nothing
    _, stats = run_bench(queries, answerer(server.url), out, workers=2)
    assert stats.cached == len(queries) and stats.answered == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert {x["id"] for x in lines} == {q.id for q in queries}
