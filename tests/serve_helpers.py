"""Helpers for the ``ocrkit serve`` tests: request bodies, a stub backend, a loopback client."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from email.message import Message

import cv2
import numpy as np

from ocrkit.serve.protocol import ChatRequest

TIMEOUT = 60


def data_url(image: np.ndarray | bytes) -> str:
    if isinstance(image, np.ndarray):
        image = cv2.imencode(".png", image)[1].tobytes()
    return "data:image/png;base64," + base64.b64encode(image).decode()


def body(prompt: str = "hi", images=(), model: str = "m") -> dict:
    content = [{"type": "image_url", "image_url": {"url": data_url(i)}} for i in images]
    return {
        "model": model,
        "messages": [{"role": "user", "content": content + [{"type": "text", "text": prompt}]}],
    }


def post_full(
    url: str, payload, raw: bytes | None = None, method: str = "POST"
) -> tuple[int, dict, Message]:
    """``(status, JSON reply, headers)`` of one request (a new connection each time); the
    headers look names up case-insensitively."""
    data = raw if raw is not None else json.dumps(payload).encode()
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            return resp.status, json.loads(resp.read()), resp.headers
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers


def post(url: str, payload, raw: bytes | None = None, method: str = "POST") -> tuple[int, dict]:
    return post_full(url, payload, raw, method)[:2]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Wait until ``condition()`` holds (a state the test needs, not a guess at timing)."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.005)


class Echo:
    """A stub backend: echoes the prompt; ``entered`` is set on each call, which then waits for
    ``gate`` (when given)."""

    name, kind = "m", "stub"

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate, self.calls = gate, 0
        self.entered = threading.Event()

    def answer(self, request: ChatRequest):
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(TIMEOUT)
        self.calls += 1
        if request.prompt == "boom":
            raise RuntimeError("model exploded")
        return f"{request.prompt}|{len(request.images)}", {}
