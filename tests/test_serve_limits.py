"""``ocrkit serve`` under hostile input: oversize bodies, decompression bombs, deep JSON, slow
clients, bursts of connections; and keep-alive. Each reproduces a failure of the stdlib server."""

from __future__ import annotations

import http.client
import json
import socket
import threading

import numpy as np
import pytest
from bench_scripts import benchmark_script
from qmask_helpers import word_image
from serve_helpers import TIMEOUT, Echo, body, data_url, post, post_full, wait_for

import ocrkit.serve.protocol as protocol
from ocrkit.serve import ModelServer, RequestError


@pytest.fixture(scope="module")
def bomb() -> bytes:
    with benchmark_script("serve_load") as script:
        return script.png_bomb(20000, 20000, bit_depth=1)  # ~48 KB, 1.2 GB once decoded to RGB


@pytest.fixture
def decodes(monkeypatch) -> list[tuple[int, ...]]:
    """The shapes decode_image produced: proves which images were (not) decoded."""
    seen: list[tuple[int, ...]] = []
    real = protocol.decode_image

    def spy(raw):
        image = real(raw)
        seen.append(image.shape)
        return image

    monkeypatch.setattr(protocol, "decode_image", spy)
    return seen


def raw_request(server: ModelServer, head: bytes, timeout: float = TIMEOUT) -> socket.socket:
    host, port = server.url.removeprefix("http://").removesuffix("/v1").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    sock.sendall(head)
    return sock


def test_a_50_mb_body_gets_413_not_a_broken_pipe() -> None:
    with ModelServer(Echo(), port=0) as server:  # default limit: 32 MiB
        host, port = server.url.removeprefix("http://").removesuffix("/v1").rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        payload = b'{"messages": "' + b"x" * (50 * 1024 * 1024) + b'"}'
        conn.request("POST", "/v1/chat/completions", payload, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        reply = json.loads(resp.read())
        assert (
            resp.status == 413 and reply["error"]["message"] == "request body over 33554432 bytes"
        )
        conn.close()
        assert post(f"{server.url}/chat/completions", body())[0] == 200


def test_decompression_bomb_refused_from_its_header(bomb: bytes, decodes) -> None:
    with ModelServer(Echo(), port=0) as server:
        code, reply = post(f"{server.url}/chat/completions", body(images=[bomb]))
        assert code == 413 and "larger than 40000000 pixels" in reply["error"]["message"]
        assert decodes == []  # refused before any pixel buffer existed
        code, reply = post(f"{server.url}/chat/completions", body(images=[word_image()]))
        assert code == 200 and decodes == [(112, 112, 3)]


def test_images_of_one_request_share_the_pixel_budget(monkeypatch, decodes) -> None:
    monkeypatch.setattr(protocol, "MAX_REQUEST_PIXELS", 112 * 112 * 2)
    two = body(images=[word_image()] * 2)["messages"]
    three = body(images=[word_image()] * 3)["messages"]
    assert len(protocol.parse_chat_request({"messages": two}).images) == 2
    with pytest.raises(RequestError, match="pixels together") as err:
        protocol.parse_chat_request({"messages": three})
    assert err.value.status == 413 and len(decodes) == 2  # only the accepted request decoded


def test_header_size_is_read_without_decoding(bomb: bytes, decodes) -> None:
    png = data_url(np.zeros((7, 13, 3), np.uint8))
    raw = protocol._data_url_bytes(png, "x")
    assert protocol.image_header_size(raw, "x") == (13, 7) and decodes == []
    with pytest.raises(RequestError, match="not a readable image") as err:
        protocol.image_header_size(b"GIF89a" + bytes(20), "x")  # not a format cv2 decodes
    assert err.value.status == 400


def test_deep_json_is_a_400_not_a_recursion_error() -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    with ModelServer(Echo(), port=0) as server:
        code, reply = post(f"{server.url}/chat/completions", None, raw=deep)
        assert code == 400 and "nested too deeply" in reply["error"]["message"]
        assert post(f"{server.url}/chat/completions", body())[0] == 200


def test_slow_headers_are_disconnected_and_hold_no_thread() -> None:
    with ModelServer(Echo(), port=0, header_timeout=0.3) as server:
        before = set(threading.enumerate())
        lorises = [raw_request(server, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")]
        lorises += [raw_request(server, b"") for _ in range(20)]  # connect and say nothing
        assert all(s.recv(1) == b"" for s in lorises)  # the server closed every one
        # no thread was started for them (threads of other tests may end meanwhile: not counted)
        assert set(threading.enumerate()) - before == set()
        for s in lorises:
            s.close()
        assert post(f"{server.url}/chat/completions", body())[0] == 200


def test_slow_body_gets_408_and_the_connection_closes() -> None:
    with ModelServer(Echo(), port=0, body_timeout=0.3) as server:
        head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
        sock = raw_request(server, head)
        reply = b""
        while chunk := sock.recv(65536):  # until the server closes
            reply += chunk
        sock.close()
        assert reply.startswith(b"HTTP/1.1 408 ") and b"connection: close" in reply.lower()
        assert b"did not arrive within 0.3 s" in reply


def test_keep_alive_serves_many_requests_on_one_connection() -> None:
    with ModelServer(Echo(), port=0) as server:
        host, port = server.url.removeprefix("http://").removesuffix("/v1").rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        socks = []
        for i in range(3):
            conn.request("POST", "/v1/chat/completions", json.dumps(body(f"q{i}")))
            resp = conn.getresponse()
            content = json.loads(resp.read())["choices"][0]["message"]["content"]
            assert resp.status == 200 and content == f"q{i}|0"
            socks.append(conn.sock)
        assert socks[0] is not None and socks.count(socks[0]) == 3  # never reconnected
        conn.close()
        # asyncio disables Nagle only on sockets created as TCP: else each reply waits ~40 ms
        assert server.socket.proto == socket.IPPROTO_TCP


def test_a_burst_of_clients_gets_answers_or_503_never_a_reset() -> None:
    gate = threading.Event()
    backend = Echo(gate)
    n = 64
    with ModelServer(backend, port=0, max_queue=2) as server:
        results: list[tuple[int, str | None] | Exception] = []
        lock = threading.Lock()

        def call() -> None:
            try:
                code, _, headers = post_full(f"{server.url}/chat/completions", body())
                outcome: tuple[int, str | None] | Exception = (code, headers.get("Retry-After"))
            except Exception as exc:  # a reset or refused connection fails the test below
                outcome = exc
            with lock:
                results.append(outcome)

        threads = [threading.Thread(target=call) for _ in range(n)]
        for t in threads:
            t.start()
        wait_for(lambda: len(results) == n - 3, "every request past the 3 admitted refused")
        gate.set()
        for t in threads:
            t.join(TIMEOUT)
    assert [r for r in results if isinstance(r, Exception)] == []
    assert sorted(results) == [(200, None)] * 3 + [(503, "1")] * (n - 3)


def test_a_queued_request_whose_client_left_is_not_computed() -> None:
    gate = threading.Event()
    backend = Echo(gate)
    with ModelServer(backend, port=0) as server:
        held = threading.Thread(target=post, args=(f"{server.url}/chat/completions", body("held")))
        held.start()
        wait_for(backend.entered.is_set, "the worker to hold the first request at the gate")
        data = json.dumps(body("left")).encode()
        head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
        sock = raw_request(server, head.encode() + b"\r\n" + data)
        wait_for(lambda: server.queued == 1, "the second request in the queue")
        sock.close()  # the client gives up
        wait_for(lambda: server.abandoned == 1, "the server to notice")
        gate.set()
        held.join(TIMEOUT)
        assert (
            post(f"{server.url}/chat/completions", body("next"))[1]["choices"][0]["message"][
                "content"
            ]
            == "next|0"
        )
        assert backend.calls == 2  # "held" and "next": "left" was never computed
