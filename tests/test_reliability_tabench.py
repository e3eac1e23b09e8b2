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


def _write_bench(path, images):
    records = [
        {"id": f"q{i}", "image": img, "width": 20, "height": 10, "task": "r2t", "box": [0, 0, 5, 5]}
        for i, img in enumerate(images)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("image", ["/etc/passwd", "../../root/.bashrc", "imgs/../../x.png"])
def test_the_runner_refuses_images_outside_the_bench_folder(tmp_path, serve, capsys, image):
    from ocrkit.cli import main

    (tmp_path / "b").mkdir()
    bench = _write_bench(tmp_path / "b" / "bench.jsonl", ["img.png", image])
    server = serve([_answer("x")])
    assert main(_run_args(bench, server.url, tmp_path / "p.jsonl")) == 1
    err = capsys.readouterr().err
    assert f"bench.jsonl:2: image {image!r}" in err and "--image-root" in err
    assert server.requests == 0


def test_image_root_allows_images_under_it_only(tmp_path, serve, image):
    from ocrkit.cli import main

    data = tmp_path / "data"
    data.mkdir()
    image.rename(data / "img.png")
    (tmp_path / "b").mkdir()
    bench = _write_bench(tmp_path / "b" / "bench.jsonl", ["../data/img.png", str(data / "img.png")])
    server = serve([_answer("x")])
    out = tmp_path / "p.jsonl"
    assert main(_run_args(bench, server.url, out, "--image-root", str(data))) == 0
    assert server.requests == 2
    bench = _write_bench(tmp_path / "b" / "bench.jsonl", ["../data/img.png", "/etc/hostname"])
    assert main(_run_args(bench, server.url, out, "--image-root", str(data))) == 1
    assert server.requests == 2


def test_a_symlink_cannot_smuggle_a_file_out(tmp_path, serve, capsys):
    from ocrkit.cli import main

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "imgs").symlink_to("/etc")
    bench = _write_bench(tmp_path / "b" / "bench.jsonl", ["imgs/hostname"])
    server = serve([_answer("x")])
    assert main(_run_args(bench, server.url, tmp_path / "p.jsonl")) == 1
    assert "leaves" in capsys.readouterr().err and server.requests == 0


def test_limit_samples_every_category_and_direction(tmp_path, serve):
    from PIL import Image

    from ocrkit.cli import main
    from ocrkit.tabench.runner import sample_queries
    from ocrkit.tabench.schema import Query, load_bench, save_bench

    Image.new("RGB", (20, 10), "white").save(tmp_path / "img.png")
    queries = [
        Query(
            f"{c}-{t}-{i}",
            "img.png",
            20,
            10,
            t,
            "p",
            "w",
            box=[0, 0, 5, 5],
            boxes=[[0, 0, 5, 5]],
            category=c,
        )  # fmt: skip
        for c in ("A", "B", "C")
        for t in ("r2t", "t2r")
        for i in range(10)
    ]
    save_bench(tmp_path / "bench.jsonl", queries)
    queries = load_bench(tmp_path / "bench.jsonl")
    picked = sample_queries(queries, 12, seed=42)
    strata = sorted((q.category, q.task) for q in picked)
    assert strata == sorted([(c, t) for c in "ABC" for t in ("r2t", "t2r")] * 2)  # 2 of each
    assert [q.id for q in sample_queries(queries, 12, seed=42)] == [q.id for q in picked]
    assert {q.id for q in sample_queries(queries, 12, seed=7)} != {q.id for q in picked}
    assert [q.id for q in picked] == [q.id for q in queries if q in picked]  # bench order kept
    server = serve([_answer("x")])
    out = tmp_path / "p.jsonl"
    assert main(_run_args(tmp_path / "bench.jsonl", server.url, out, "--limit", "12")) in (0, 1)
    ids = {json.loads(line)["id"] for line in out.read_text().splitlines()}
    assert ids == {q.id for q in picked}


def test_build_keeps_image_paths_as_given_not_through_symlinks(tmp_path):
    from PIL import Image

    from ocrkit.cli import main

    real = tmp_path / "real" / "scene"
    (real / "images").mkdir(parents=True)
    Image.new("RGB", (60, 30), "white").save(real / "images" / "a.png")
    words = ["one", "two", "three", "four", "five"]
    regions = [{"text": w, "points": [[1, 5 * i], [20, 5 * i], [20, 5 * i + 4], [1, 5 * i + 4]]} for i, w in enumerate(words)]  # fmt: skip
    ann = {"image": "images/a.png", "instances": regions}
    (real / "annotations.jsonl").write_text(json.dumps(ann) + "\n", encoding="utf-8")
    (tmp_path / "data").symlink_to(tmp_path / "real")
    out = tmp_path / "bench" / "b.jsonl"
    assert main(["tabench", "build", "--out", str(out), "--scene", str(tmp_path / "data" / "scene")]) == 0  # fmt: skip
    images = {json.loads(line)["image"] for line in out.read_text().splitlines()}
    assert images == {"../data/scene/images/a.png"}  # was ../real/scene/images/a.png
