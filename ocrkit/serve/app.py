"""The Starlette app: OpenAI-compatible routes, bounded body reads, admission, JSON errors.

Routes: ``POST /v1/chat/completions`` (and ``/chat/completions``), ``GET /v1/models``
(``/models``), ``GET /health`` (``/v1/health``). Every error is an OpenAI-style
``{"error": {...}}`` body; ``503`` (busy, stopping) carries ``Retry-After``.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from ocrkit.serve.protocol import (
    ChatRequest,
    ClientGone,
    RequestError,
    chat_reply,
    parse_chat_request,
    parse_json,
)

if TYPE_CHECKING:
    from ocrkit.serve.server import ModelServer

CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")
MODEL_PATHS = ("/v1/models", "/models")
HEALTH_PATHS = ("/health", "/v1/health")


def json_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    """``body`` as JSON, byte for byte what the earlier stdlib server sent."""
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return Response(data, status, headers=headers, media_type="application/json")


def error_response(err: RequestError, close: bool = False) -> Response:
    """The OpenAI error body; ``Retry-After`` on 429/503, ``Connection: close`` when asked."""
    headers = {"Retry-After": "1"} if err.status in (429, 503) else {}
    if close:
        headers["Connection"] = "close"
    return json_response(err.status, err.body(), headers)


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The whole body, at most ``limit`` bytes, arriving within ``timeout`` seconds.

    A declared ``Content-Length`` over the limit is refused before one byte is read (uvicorn
    then discards the rest of the upload, so the client still reads its ``413``).
    """
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise RequestError(413, f"request body over {limit} bytes")
    body = bytearray()
    with anyio.fail_after(timeout):
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise RequestError(413, f"request body over {limit} bytes")
    return bytes(body)


async def disconnected(request: Request) -> None:
    """Return when the client disconnects (call once the body is read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def parse_body(raw: bytes) -> ChatRequest:
    """JSON, validation and image decoding (in a decode thread, off the event loop)."""
    return parse_chat_request(parse_json(raw))


def build_app(server: ModelServer) -> Starlette:
    """The ASGI app serving ``server.backend``; admission and the model queue live in ``server``."""

    async def chat(request: Request) -> Response:
        if server.closing.is_set():
            return error_response(
                RequestError(503, "the server is shutting down", kind="server_error")
            )
        if server.in_flight >= server.capacity:  # refused before the body is read
            return error_response(
                RequestError(
                    503,
                    f"the server is busy ({server.max_queue} requests queued); retry shortly",
                    kind="server_error",
                )
            )
        server.in_flight += 1  # the event loop is one thread: no lock needed
        try:
            try:
                raw = await read_body(request, server.max_body_bytes, server.body_timeout)
            except TimeoutError:
                err = RequestError(408, f"the body did not arrive within {server.body_timeout:g} s")
                return error_response(err, close=True)
            chat_request = await server.run_decode(parse_body, raw)
            del raw  # a queued request holds its pixels, not its body
            if chat_request.model not in ("", server.backend.name):
                raise RequestError(
                    404,
                    f"model {chat_request.model!r} is not served here; use {server.backend.name!r}",
                    "model",
                    "model_not_found",
                )
            text, extra = await server.answer(chat_request, gone=disconnected(request))
            return json_response(200, chat_reply(server.backend.name, text, extra=extra))
        except RequestError as err:
            return error_response(err)
        except (ClientDisconnect, ClientGone):  # nobody to answer; uvicorn drops what is sent
            return Response(status_code=400)
        finally:
            server.in_flight -= 1

    async def models(request: Request) -> Response:
        model = {
            "id": server.backend.name,
            "object": "model",
            "created": int(time.time()),
            "owned_by": "ocrkit",
            "ocrkit_kind": server.backend.kind,
        }
        return json_response(200, {"object": "list", "data": [model]})

    async def health(request: Request) -> Response:
        status = "stopping" if server.closing.is_set() else "ok"
        body = {"status": status, "queued": server.queued, "answered": server.answered}
        return json_response(200, body)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            msg = f"method {request.method} is not allowed; use POST or GET"
        else:
            msg = f"no such endpoint {request.url.path!r}; use POST /v1/chat/completions"
        return error_response(RequestError(exc.status_code, msg))

    routes = []
    for paths, endpoint, method in (
        (CHAT_PATHS, chat, "POST"),
        (MODEL_PATHS, models, "GET"),
        (HEALTH_PATHS, health, "GET"),
    ):  # with and without a trailing slash, as before (a redirect would lose a POST's body)
        routes += [Route(p + s, endpoint, methods=[method]) for p in paths for s in ("", "/")]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})
