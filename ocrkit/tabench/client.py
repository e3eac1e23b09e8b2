"""A small OpenAI-compatible chat-completions client (vLLM, SGLang, LMDeploy, hosted APIs).

Standard library only (``urllib``). The image travels as a base64 data URL. Transient failures
(HTTP 429 and 5xx, timeouts, refused or reset connections, a reply that is not the expected
JSON) are retried with exponential backoff and jitter, honouring ``Retry-After``; other 4xx
replies fail the query at once. Failed queries are reported, never cached.
"""

from __future__ import annotations

import base64
import http.client
import json
import mimetypes
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class RequestFailed(Exception):
    """A query that could not be answered (after retries, or a non-retryable reply)."""


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@lru_cache(maxsize=32)
def image_data_url(path: str) -> str:
    """``data:<mime>;base64,...`` for an image file (recently used images are kept)."""
    mime = mimetypes.guess_type(path)[0] or "image/jpeg"
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
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

    def _post(self, body: bytes) -> str:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(chat_url(self.endpoint), data=body, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:200].decode("utf-8", "replace")
            if exc.code in RETRY_STATUS:
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                try:
                    after = float(retry_after) if retry_after else None
                except ValueError:
                    after = None
                raise _Retryable(f"HTTP {exc.code}: {detail}", after) from None
            raise RequestFailed(f"HTTP {exc.code}: {detail}") from None
        except (
            urllib.error.URLError,
            http.client.HTTPException,
            TimeoutError,
            ConnectionError,
        ) as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None
        try:
            reply = json.loads(raw)
            content = reply["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise _Retryable(f"malformed reply: {raw[:200]!r}") from None
        if isinstance(content, list):  # content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return content if isinstance(content, str) else ""
