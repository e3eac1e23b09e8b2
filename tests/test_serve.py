"""``ocrkit serve``: OpenAI-compatible endpoint, errors, bounded queue, shutdown, TABench e2e."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import pytest
from qmask_helpers import tiny_cache, word_image
from serve_helpers import TIMEOUT, Echo, body, post, post_full, wait_for

from ocrkit.serve import ModelServer, RequestError, load_backend, parse_chat_request


def test_chat_completion_round_trip_and_endpoints() -> None:
    with ModelServer(Echo(), port=0) as server:
        url = server.url
        status, reply = post(f"{url}/chat/completions", body("hello", [word_image()]))
        assert status == 200 and reply["object"] == "chat.completion"
        assert reply["choices"][0]["message"] == {"role": "assistant", "content": "hello|1"}
        assert post(f"{url}/chat/completions/?x=1", body("again"))[0] == 200
        with urllib.request.urlopen(f"{url}/models", timeout=TIMEOUT) as resp:
            assert json.loads(resp.read())["data"][0]["id"] == "m"
        with urllib.request.urlopen(url.removesuffix("/v1") + "/health", timeout=TIMEOUT) as resp:
            assert json.loads(resp.read())["status"] == "ok"


@pytest.mark.parametrize(
    ("payload", "raw", "status", "needle"),
    [
        (None, b"{not json", 400, "not valid JSON"),
        ({"messages": []}, None, 400, "non-empty list"),
        (body(model="other"), None, 404, "not served here"),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}],
                    }
                ],
            },
            None,
            400,
            "only data URLs",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image_url",
                                "image_url": {"url": "data:image/png;base64,AAAA"},
                            }
                        ],
                    }
                ],
            },
            None,
            400,
            "not a readable image",
        ),
        ({**body(), "stream": True}, None, 400, "streaming"),
        ({**body(), "max_tokens": 0}, None, 400, "max_tokens"),
        (body("boom"), None, 500, "model exploded"),
    ],
)
def test_bad_requests_get_clear_errors(payload, raw, status, needle) -> None:
    with ModelServer(Echo(), port=0) as server:
        code, reply = post(f"{server.url}/chat/completions", payload, raw)
        assert code == status and needle in reply["error"]["message"]
        code, _ = post(f"{server.url}/chat/completions", body("still alive"))
        assert code == 200


def test_unknown_paths_methods_and_oversize_bodies() -> None:
    with ModelServer(Echo(), port=0, max_body_bytes=1000) as server:
        assert post(f"{server.url}/completions", body())[0] == 404
        assert post(f"{server.url}/chat/completions", body(), method="PUT")[0] == 405
        code, reply = post(f"{server.url}/chat/completions", body("x" * 2000))
        assert code == 413 and "1000 bytes" in reply["error"]["message"]


def test_bounded_queue_answers_503_then_recovers() -> None:
    gate = threading.Event()
    backend = Echo(gate)
    with ModelServer(backend, port=0, max_queue=1) as server:
        results: list[int] = []

        def call() -> None:
            results.append(post(f"{server.url}/chat/completions", body())[0])

        threads = [threading.Thread(target=call) for _ in range(2)]
        threads[0].start()
        wait_for(backend.entered.is_set, "the worker to hold the first request at the gate")
        threads[1].start()
        wait_for(lambda: server.queued == 1, "the second request in the queue (it holds one)")
        code, reply, headers = post_full(f"{server.url}/chat/completions", body())  # no room
        assert code == 503 and "busy" in reply["error"]["message"]
        assert headers["Retry-After"] == "1"
        gate.set()
        for t in threads:
            t.join(TIMEOUT)
        assert sorted(results) == [200, 200] and backend.calls == 2


def test_timeout_gives_504_and_shutdown_drains_the_queue() -> None:
    gate = threading.Event()
    backend = Echo(gate)
    server = ModelServer(backend, port=0, timeout=0.2).start()
    code, reply = post(f"{server.url}/chat/completions", body())  # the worker waits at the gate
    assert code == 504 and "no answer within" in reply["error"]["message"]
    server.timeout = TIMEOUT
    done: list[int] = []
    t = threading.Thread(
        target=lambda: done.append(post(f"{server.url}/chat/completions", body())[0])
    )
    t.start()
    wait_for(lambda: server.queued == 1, "the second request queued behind the first")
    stopper = threading.Thread(target=server.shutdown)
    stopper.start()
    wait_for(server.closing.is_set, "the shutdown to begin")
    gate.set()  # the worker finishes the abandoned request, then answers the queued one
    stopper.join(TIMEOUT)
    t.join(TIMEOUT)
    assert done == [200] and backend.calls == 2
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{server.url}/models", timeout=2)


def test_parse_chat_request_accepts_plain_strings_and_system() -> None:
    req = parse_chat_request(
        {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}
    )
    assert req.prompt == "hi" and req.system == "be brief" and req.images == []
    with pytest.raises(RequestError, match="no user message"):
        parse_chat_request({"messages": [{"role": "system", "content": "x"}]})


@pytest.fixture(scope="module")
def recognizer_dir(tmp_path_factory) -> Path:
    import torch

    from ocrkit.models import Recognizer

    torch.manual_seed(0)
    cfg = {
        "backbone": {"name": "vit_small", "embed_dim": 32, "depth": 1, "num_heads": 2},
        "decoder": {"name": "ar", "embed_dim": 32, "depth": 1, "num_heads": 2, "dropout": 0.0},
        "charset": "36",
        "max_length": 8,
    }
    return Recognizer.from_config(cfg).save_pretrained(tmp_path_factory.mktemp("rec") / "rec")


def test_serves_an_str_recognizer(recognizer_dir: Path) -> None:
    from ocrkit.models import Recognizer

    backend = load_backend(recognizer_dir)
    assert backend.kind == "recognizer" and backend.name == "rec"
    image = word_image()
    expected = Recognizer.from_pretrained(recognizer_dir).predict([image])[0].text
    with ModelServer(backend, port=0) as server:
        code, reply = post(f"{server.url}/chat/completions", body("read it", [image], model="rec"))
        assert code == 200 and reply["choices"][0]["message"]["content"] == expected
        extra = reply["ocrkit"]  # an AR model: no positions
        assert len(extra["char_confidences"]) == len(expected) and "char_positions" not in extra
        code, reply = post(
            f"{server.url}/chat/completions", body("read", [image, image], model="rec")
        )
        assert code == 400 and "exactly one" in reply["error"]["message"]
    with pytest.raises(FileNotFoundError, match="neither a Q-Mask folder"):
        load_backend(recognizer_dir.parent)


def test_embedded_recognizers_are_served_by_name() -> None:
    from ocrkit.serve import ChatRequest

    backend = load_backend("tiny")
    assert backend.kind == "recognizer" and backend.name == "tiny"
    assert backend.model.charset.name == "36"  # the embedded tiny model, not a folder ./tiny
    ctc = load_backend("default")  # a CTC model: its answer places the characters
    text, extra = ctc.answer(ChatRequest("default", "read", [word_image()]))
    assert text == "OPEN" and len(extra["char_positions"]) == 4 == len(extra["char_confidences"])


def test_cli_serve_stops_gracefully_on_sigterm(recognizer_dir: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocrkit", "serve", "--model", str(recognizer_dir), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "serving 'rec' (recognizer) on http://127.0.0.1:" in line, proc.stderr.read()
        url = line.split(" on ")[1].split()[0]
        assert post(f"{url}/chat/completions", body("x", [word_image()], model="rec"))[0] == 200
        proc.terminate()
        out, _ = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0 and "stopped after 1 answered requests" in out
    finally:
        if proc.poll() is None:
            proc.kill()


def test_cli_serve_busy_port_and_bad_limits_are_one_line(recognizer_dir: Path, capsys) -> None:
    from ocrkit.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--model", str(recognizer_dir), "--port", str(port)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ocrkit serve: error: cannot listen on 127.0.0.1:") and "\n" not in err
    assert main(["serve", "--model", str(recognizer_dir), "--body-timeout", "0"]) == 1
    assert capsys.readouterr().err == "ocrkit serve: error: --body-timeout must be positive\n"


# --- end to end: ocrkit serve + ocrkit tabench run on loopback, and the local engine ----------


@pytest.fixture(scope="module")
def qmask_dir(tmp_path_factory) -> Path:
    pytest.importorskip("transformers")
    import torch

    from ocrkit.anchoring.model import QMask, QMaskConfig
    from ocrkit.testing.tiny_vlm import tiny_processor, tiny_vlm

    torch.manual_seed(0)
    processor = tiny_processor("qwen2_5_vl", tiny_cache(tmp_path_factory))
    model = QMask(
        tiny_vlm("qwen2_5_vl", processor),
        processor,
        QMaskConfig(tiny="qwen2_5_vl", head={"size": "small", "channels": 16}),
    )
    folder = tmp_path_factory.mktemp("qm") / "qmask-tiny"
    model.save_pretrained(folder)
    return folder


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), word_image("OPEN"))
    queries = [
        {
            "id": "r0",
            "image": "images/a.png",
            "width": 112,
            "height": 112,
            "task": "r2t",
            "box": [14, 44, 96, 70],
            "text": "OPEN",
        },
        {
            "id": "t0",
            "image": "images/a.png",
            "width": 112,
            "height": 112,
            "task": "t2r",
            "boxes": [[14, 44, 96, 70]],
            "text": "OPEN",
        },
    ]
    path = tmp_path / "bench.jsonl"
    path.write_text("\n".join(json.dumps(q) for q in queries) + "\n")
    return path


def test_serve_and_tabench_run_end_to_end(
    qmask_dir: Path, bench: Path, tmp_path: Path, capsys
) -> None:
    from ocrkit.cli import main
    from ocrkit.serve import QMaskBackend

    backend = QMaskBackend(qmask_dir, max_new_tokens=8)
    with ModelServer(backend, port=0) as server:
        code, reply = post(
            f"{server.url}/chat/completions",
            body('Where is "OPEN" located in the image?', [word_image()], model="qmask-tiny"),
        )
        assert code == 200 and len(reply["ocrkit"]["boxes"]) == 1  # one image -> one box list
        out = tmp_path / "preds.jsonl"
        args = [
            "tabench",
            "run",
            "--bench",
            str(bench),
            "--out",
            str(out),
            "--endpoint",
            server.url,
            "--model",
            "qmask-tiny",
            "--adapter",
            "json",
            "--workers",
            "2",
            "--retries",
            "1",
            "--max-tokens",
            "8",
            "--json",
            str(tmp_path / "scores.json"),
        ]
        assert main(args) == 0
        assert server.answered == 3
    preds = [json.loads(line) for line in out.read_text().splitlines()]
    assert {p["id"] for p in preds} == {"r0", "t0"} and all("raw" in p for p in preds)
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["r2t"]["n"] == 1 and scores["t2r"]["n"] == 1
    assert "2 queries: 0 from cache, 2 answered, 0 failed" in capsys.readouterr().out


def test_tabench_local_qmask_engine(qmask_dir: Path, bench: Path, tmp_path: Path, capsys) -> None:
    from ocrkit.cli import main

    out = tmp_path / "local.jsonl"
    args = [
        "tabench",
        "run",
        "--bench",
        str(bench),
        "--out",
        str(out),
        "--engine",
        "qmask",
        "--engine-opt",
        f"model={qmask_dir}",
        "--engine-opt",
        "boxes=mask",
        "--engine-opt",
        "max_new_tokens=8",
    ]
    assert main(args) == 0
    preds = {p["id"]: p for p in map(json.loads, out.read_text().splitlines())}
    # The exact answers of the tiny random Qwen2.5-VL Q-Mask (qmask_dir: torch.manual_seed(0),
    # greedy decoding, 8 new tokens); the T2R box is read from its mask (boxes=mask). Same on
    # every run; a torch/transformers release that initializes differently changes them.
    assert preds == {
        "r0": {"id": "r0", "text": "\ufffdletWhat\r\x16X\ufffdlet"},
        "t0": {"id": "t0", "boxes": [[7.0, 0.0, 112.0, 112.0]]},
    }
    printed = capsys.readouterr().out
    assert "2 queries: 0 from cache, 2 answered, 0 failed" in printed
    assert "R2T n=1 Acc=0.00 | T2R n=1 P=0.00 R=0.00 F1=0.00 | Overall=0.00" in printed
