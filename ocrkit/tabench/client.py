"""A small OpenAI-compatible chat-completions client (vLLM, SGLang, LMDeploy, hosted APIs).

Standard library (``http.client``). The image travels as a base64 data URL, as its file's bytes;
a file stored rotated (EXIF orientation) is sent upright as PNG instead, decoded by ocrkit's one
image loader, since bench boxes are in the upright frame and servers differ on EXIF. Transient
failures (HTTP 429 and 5xx, timeouts, refused or reset connections, a reply that is not the
expected JSON or has no content: ``"content": null``) are retried with exponential backoff and
jitter, honouring ``Retry-After``; other 4xx replies and replies over the size cap fail the query
at once. Failed queries are reported, never cached.

``timeout`` bounds the **whole** request (connect, headers and body): a watchdog shuts the socket
down at the deadline, so a server that drips its reply a byte at a time cannot hold a worker.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import mimetypes
import random
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_REPLY_BYTES = 8 << 20  # a chat reply of 512 tokens is a few KiB


class RequestFailed(Exception):
    """A query that could not be answered (after retries, or a non-retryable reply)."""


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@lru_cache(maxsize=32)
def image_data_url(path: str) -> str:
    """``data:<mime>;base64,...`` for an image file (recently used images are kept); an image
    stored rotated is sent upright (PNG), the frame its bench boxes are in."""
    from ocrkit.data.image_io import CorruptImageError, decode_image, encode_image, exif_orientation

    mime = mimetypes.guess_type(path)[0] or "image/jpeg"
    raw = Path(path).read_bytes()
    try:
        turned = exif_orientation(raw) != 1
    except CorruptImageError:  # not for us to judge: the server answers for what it gets
        turned = False
    if turned:
        raw, mime = encode_image(decode_image(raw), ".png"), "image/png"
    data = base64.b64encode(raw).decode("ascii")
    return f"data:{mime};base64,{data}"


def chat_url(endpoint: str) -> str:
    """Accept a server root, a ``/v1`` base or the full chat-completions URL."""
    url = endpoint.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if not url.endswith("/v1"):
        url += "/v1"
    return url + "/chat/completions"


@dataclass
class ChatClient:
    """Posts one image + prompt and returns the assistant's text."""

    endpoint: str
    model: str
    timeout: float = 120.0
    max_retries: int = 4
    backoff: float = 1.0
    max_backoff: float = 60.0
    max_tokens: int = 512
    temperature: float = 0.0
    api_key: str | None = None
    system_prompt: str | None = None
    max_reply_bytes: int = MAX_REPLY_BYTES

    def payload(self, image_path: str | Path, prompt: str) -> dict[str, Any]:
        content = [
            {"type": "image_url", "image_url": {"url": image_data_url(str(image_path))}},
            {"type": "text", "text": prompt},
        ]
        messages: list[dict[str, Any]] = [{"role": "user", "content": content}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }

    def complete(self, image_path: str | Path, prompt: str) -> str:
        """The reply text; raises :class:`RequestFailed` when retries are exhausted."""
        body = json.dumps(self.payload(image_path, prompt)).encode("utf-8")
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            try:
                return self._post(body)
            except _Retryable as exc:
                last = str(exc)
                if attempt == self.max_retries:
                    break
                delay = min(self.max_backoff, self.backoff * 2**attempt)
                delay *= 0.5 + random.random() / 2  # jitter
                if exc.retry_after is not None:
                    delay = min(self.max_backoff, max(delay, exc.retry_after))
                time.sleep(delay)
        raise RequestFailed(f"gave up after {self.max_retries + 1} attempts: {last}")

    def check(self) -> None:
        """Fail at once, in one line, when nothing listens at the endpoint (before any query)."""
        url = urllib.parse.urlsplit(chat_url(self.endpoint))
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            socket.create_connection((url.hostname, port), timeout=min(10.0, self.timeout)).close()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise EndpointUnreachable(
                f"cannot reach {self.endpoint} ({url.hostname}:{port}: {reason}); is the server "
                "running? No query was sent"
            ) from None

    def _post(self, body: bytes) -> str:
        status, headers, raw = self._exchange(body)
        if status >= 400:
            detail = raw[:200].decode("utf-8", "replace")
            if status in RETRY_STATUS:
                try:
                    after = float(headers.get("Retry-After") or "")
                except ValueError:
                    after = None
                raise _Retryable(f"HTTP {status}: {detail}", after)
            raise RequestFailed(f"HTTP {status}: {detail}")
        try:
            reply = json.loads(raw)
            content = reply["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError, RecursionError):
            raise _Retryable(f"malformed reply: {raw[:200]!r}") from None
        if isinstance(content, list):  # content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise _Retryable(f"reply without content (content: {json.dumps(content)[:40]})")
        return content

    def _exchange(self, body: bytes) -> tuple[int, http.client.HTTPMessage, bytes]:
        """POST ``body``; ``(status, headers, reply bytes)`` within ``timeout`` seconds in all."""
        url = urllib.parse.urlsplit(chat_url(self.endpoint))
        cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        conn = cls(url.hostname, url.port, timeout=self.timeout)
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        deadline = time.monotonic() + self.timeout
        watchdog = threading.Timer(self.timeout, _hang_up, (conn,))
        watchdog.daemon = True
        watchdog.start()
        try:
            conn.request("POST", url.path + (f"?{url.query}" if url.query else ""), body, headers)
            resp = conn.getresponse()
            size = int(resp.headers.get("Content-Length") or 0)
            if size > self.max_reply_bytes:
                raise RequestFailed(f"reply larger than {self.max_reply_bytes} bytes ({size})")
            chunks, size = [], 0
            while chunk := resp.read1(1 << 16):
                size += len(chunk)
                if size > self.max_reply_bytes:
                    raise RequestFailed(f"reply larger than {self.max_reply_bytes} bytes")
                chunks.append(chunk)
            if time.monotonic() >= deadline or (resp.length or 0) > 0:
                raise OSError("reply cut short")
            return resp.status, resp.headers, b"".join(chunks)
        except (OSError, http.client.HTTPException) as exc:
            if time.monotonic() >= deadline:
                raise _Retryable(
                    f"timed out after {self.timeout:g} s (whole request, --timeout)"
                ) from None
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None
        finally:
            watchdog.cancel()
            conn.close()


class EndpointUnreachable(ValueError):
    """Nothing answers at the endpoint: the run stops before asking anything."""


def _hang_up(conn: http.client.HTTPConnection) -> None:
    """The deadline passed: shut the socket so a blocked read returns at once."""
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
