"""The OpenAI chat-completions wire format: request validation, data URLs, replies, errors.

Only what an OCR model needs is accepted: ``messages`` whose user content holds text parts and
``image_url`` parts with ``data:`` URLs (base64). Images are never fetched from the network, and
their sizes are read from the headers before any pixel is decoded (decompression bombs cost
nothing); decoding is :func:`ocrkit.data.image_io.decode_image`, as everywhere in ocrkit.
Every problem raises :class:`RequestError` with the HTTP status and an OpenAI-style error body.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ocrkit.data.image_io import CorruptImageError, decode_image, image_size

MAX_IMAGES = 8
MAX_IMAGE_PIXELS = 40_000_000
MAX_REQUEST_PIXELS = 40_000_000  # all images of one request: bounds the memory a queued job holds
_HEADER_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF")
_UNREADABLE = "not a readable image (PNG, JPEG, WebP, BMP, TIFF)"


class RequestError(Exception):
    """A request the server refuses; ``status`` is the HTTP code, ``param`` the bad field."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.kind = status, message, param, kind

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.status,
            }
        }


class ClientGone(Exception):
    """The client disconnected before its answer: there is nobody to reply to."""


@dataclass
class ChatRequest:
    """What a backend answers: the images and the text of the last user turn."""

    model: str
    prompt: str
    images: list[np.ndarray] = field(default_factory=list)
    max_tokens: int | None = None
    system: str | None = None


def parse_json(raw: bytes) -> Any:
    """The request body as JSON; malformed or absurdly nested bodies are a ``400``."""
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(400, f"the body is not valid JSON ({exc})") from None
    except RecursionError:
        raise RequestError(400, "the body is not valid JSON (nested too deeply)") from None


def _data_url_bytes(url: Any, where: str) -> bytes:
    """The encoded image inside ``data:image/...;base64,...``; other URLs are refused."""
    if not isinstance(url, str) or not url.startswith("data:"):
        raise RequestError(
            400,
            f"{where}: only data URLs (data:image/png;base64,...) are accepted; "
            "this server never fetches images from the network",
            where,
        )
    header, sep, payload = url.partition(",")
    if not sep or ";base64" not in header:
        raise RequestError(400, f"{where}: a data URL must be base64 encoded", where)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, f"{where}: the base64 payload does not decode", where) from None


def image_header_size(raw: bytes, where: str) -> tuple[int, int]:
    """``(width, height)`` read from the image header alone (PIL parses no pixel data), after
    EXIF orientation: :func:`ocrkit.data.image_io.image_size`.

    This is what makes a decompression bomb cheap to refuse: a 379 KiB PNG that claims
    20000x20000 is rejected here, before a 1.2 GB pixel buffer is ever allocated.
    """
    from PIL import Image

    try:
        return image_size(raw, formats=_HEADER_FORMATS)
    except Image.DecompressionBombError:  # PIL's own limit (~179 M pixels) is above ours
        msg = f"{where}: image larger than {MAX_IMAGE_PIXELS} pixels"
        raise RequestError(413, msg, where) from None
    except CorruptImageError:
        raise RequestError(400, f"{where}: {_UNREADABLE}", where) from None


def decode_images(encoded: list[tuple[bytes, str]]) -> list[np.ndarray]:
    """Check every image's size from its header, then decode them all to RGB ``uint8``.

    Nothing is decoded until all headers pass: one image over :data:`MAX_IMAGE_PIXELS`, or
    images over :data:`MAX_REQUEST_PIXELS` together, refuse the request with ``413``.
    """
    total = 0
    for raw, where in encoded:
        width, height = image_header_size(raw, where)
        if width * height > MAX_IMAGE_PIXELS:
            raise RequestError(
                413,
                f"{where}: image larger than {MAX_IMAGE_PIXELS} pixels ({width}x{height})",
                where,
            )
        total += width * height
    if total > MAX_REQUEST_PIXELS:
        raise RequestError(
            413, f"the images of one request hold over {MAX_REQUEST_PIXELS} pixels together"
        )
    images = []
    for raw, where in encoded:
        try:
            image = decode_image(raw)
        except CorruptImageError as exc:
            raise RequestError(400, f"{where}: {_UNREADABLE} ({exc})", where) from None
        if image.shape[0] * image.shape[1] > MAX_IMAGE_PIXELS:  # a header that lied
            raise RequestError(413, f"{where}: image larger than {MAX_IMAGE_PIXELS} pixels", where)
        images.append(image)
    return images


def decode_data_url(url: str, where: str) -> np.ndarray:
    """``data:image/...;base64,...`` -> RGB ``uint8``; other URLs are refused (no fetching)."""
    return decode_images([(_data_url_bytes(url, where), where)])[0]


def parse_chat_request(body: Any) -> ChatRequest:
    """Validate an OpenAI chat-completions body into a :class:`ChatRequest`."""
    if not isinstance(body, dict):
        raise RequestError(400, "the body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "'messages' must be a non-empty list", "messages")
    if body.get("stream"):
        raise RequestError(400, "streaming is not supported; send stream=false", "stream")
    n = body.get("n", 1)
    if n != 1:
        raise RequestError(400, "only n=1 is supported", "n")
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    if max_tokens is not None and (
        not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
    ):
        raise RequestError(400, "'max_tokens' must be a positive integer", "max_tokens")
    system = None
    user: dict[str, Any] | None = None
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or msg.get("role") not in (
            "system",
            "user",
            "assistant",
            "developer",
        ):
            raise RequestError(
                400, f"messages[{i}] needs a role of system, user or assistant", f"messages[{i}]"
            )
        if msg["role"] in ("system", "developer") and isinstance(msg.get("content"), str):
            system = msg["content"]
        if msg["role"] == "user":
            user = msg
    if user is None:
        raise RequestError(400, "no user message", "messages")
    idx = messages.index(user)
    texts: list[str] = []
    encoded: list[tuple[bytes, str]] = []
    content = user.get("content")
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
    if not isinstance(parts, list):
        raise RequestError(
            400,
            f"messages[{idx}].content must be a string or a list of parts",
            f"messages[{idx}].content",
        )
    for j, part in enumerate(parts):
        where = f"messages[{idx}].content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url":
            url = part.get("image_url")
            url = url.get("url") if isinstance(url, dict) else url
            encoded.append((_data_url_bytes(url, where), where))
        else:
            raise RequestError(
                400,
                f"{where}: use {{'type': 'text', 'text': ...}} or {{'type': 'image_url', ...}}",
                where,
            )
    if len(encoded) > MAX_IMAGES:
        raise RequestError(
            400, f"at most {MAX_IMAGES} images per request", f"messages[{idx}].content"
        )
    model = body.get("model", "")
    if not isinstance(model, str):
        raise RequestError(400, "'model' must be a string", "model")
    images = decode_images(encoded)
    return ChatRequest(
        model=model, prompt="\n".join(texts), images=images, max_tokens=max_tokens, system=system
    )


def chat_reply(
    model: str,
    text: str,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` object; ``extra`` goes under the ``ocrkit`` key."""
    reply: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    if extra:
        reply["ocrkit"] = extra
    return reply
