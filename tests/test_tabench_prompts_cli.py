"""``ocrkit tabench run`` against a loopback OpenAI-compatible server: the exact prompts sent,
the prompt set recorded in the scores JSON, and DeepSeek-OCR's R2T not asked (scored 0)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from ocrkit.cli import main
from ocrkit.tabench.schema import Query, save_bench


@pytest.fixture
def server():
    """Records every prompt; answers R2T with "Ave" and T2R with one bbox_2d."""
    prompts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompt = body["messages"][0]["content"][1]["text"]
            prompts.append(prompt)
            answer = "Ave" if "at location" in prompt else '[{"bbox_2d": [100, 50, 200, 100]}]'
            data = json.dumps({"choices": [{"message": {"content": answer}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", prompts
    httpd.shutdown()
    httpd.server_close()


def _bench(tmp_path):
    Image.new("RGB", (1000, 500), "white").save(tmp_path / "img.png")
    box = [100, 50, 200, 100]
    save_bench(
        tmp_path / "bench.jsonl",
        [
            Query("r", "img.png", 1000, 500, "r2t", "", "Ave", box=box),
            Query("t", "img.png", 1000, 500, "t2r", "", "Ave", boxes=[box]),
        ],
    )
    return tmp_path / "bench.jsonl"


def _run(tmp_path, url, adapter, *extra):
    out = tmp_path / f"{adapter}.json"
    argv = ["tabench", "run", "--bench", str(_bench(tmp_path)), "--endpoint", url]
    argv += ["--model", "m", "--adapter", adapter, "--workers", "1", "--json", str(out)]
    assert main([*argv, "--out", str(tmp_path / f"{adapter}.jsonl"), *extra]) == 0
    return json.loads(out.read_text())


def test_qwen2_5_vl_sends_the_paper_prompts(tmp_path, server):
    url, prompts = server
    result = _run(tmp_path, url, "qwen2_5_vl")
    # smart_resize(500, 1000) = (504, 1008): [100, 50, 200, 100] -> [101, 50, 202, 101]
    assert sorted(prompts) == [
        "What is the text at location [101, 50, 202, 101]?",
        'Where is "Ave" located in the image? '
        'Answer in JSON: [{"bbox_2d": [x_min, y_min, x_max, y_max]}, ...].',
    ]
    assert result["run"]["prompts"] == "paper" and result["run"]["adapter"] == "qwen2_5_vl"
    assert result["r2t"]["accuracy"] == 100.0
    prompts.clear()
    md = tmp_path / "native.md"
    native = _run(tmp_path, url, "qwen2_5_vl", "--prompts", "native", "--report", str(md))
    assert native["run"]["prompts"] == "native"
    assert "Run: prompts `native` (adapter `qwen2_5_vl`)." in md.read_text()
    assert "What is the text in the region [101, 50, 202, 101]? Answer with the text only." in (
        prompts
    )


def test_deepseek_ocr_is_t2r_only(tmp_path, server):
    url, prompts = server
    result = _run(tmp_path, url, "deepseek_ocr")
    assert prompts == ["Locate <|ref|>Ave<|/ref|> in the image."]
    assert result["run"]["not_asked"] == {"r2t": 1, "t2r": 0}
    assert result["r2t"]["accuracy"] == 0.0 and result["missing"]["r2t"] == 1
    # Overall = (0 + F1) / 2; the one T2R box: 0-999 grid -> not the target at IoU 0.5 here
    f1 = result["t2r"]["f1"]
    assert result["overall"] == pytest.approx(f1 / 2)
