"""An OpenAI-compatible HTTP server for ocrkit models (standard library only).

Endpoints: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /health``.

* One worker thread runs the model; HTTP threads only parse, queue and wait. The queue is
  bounded (``max_queue``): a full queue answers ``503`` with ``Retry-After`` (OpenAI clients and
  the TABench runner retry it), a request not answered within ``timeout`` seconds gets ``504``.
* Bad requests get ``400``/``404``/``413`` with an OpenAI-style ``{"error": {...}}`` body that
  says what is wrong; a model failure gets ``500`` and the server keeps running.
* :meth:`ModelServer.shutdown` stops accepting connections, answers what is queued (or refuses
  it with ``503`` when ``drain=False``) and joins the worker: a graceful stop on SIGINT/SIGTERM.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ocrkit.serve.backends import Backend
from ocrkit.serve.protocol import ChatRequest, RequestError, chat_reply, parse_chat_request

log = logging.getLogger(__name__)
CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")


@dataclass
class _Job:
    request: ChatRequest
    done: threading.Event = field(default_factory=threading.Event)
    result: tuple[str, dict[str, Any]] | None = None
    error: RequestError | None = None
    cancelled: bool = False


class ModelServer:
    """Serves ``backend`` on ``host:port`` (port 0 picks a free one; see :attr:`url`)."""

    def __init__(
        self,
        backend: Backend,
        host: str = "127.0.0.1",
        port: int = 8000,
        max_queue: int = 16,
        timeout: float = 600.0,
        max_body_bytes: int = 32 * 1024 * 1024,
        max_requests: int | None = None,
    ) -> None:
        self.backend = backend
        self.max_queue, self.timeout, self.max_body_bytes = (
            max_queue,
            float(timeout),
            max_body_bytes,
        )
        self.max_requests = max_requests
        self.answered = 0
        self.jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=max(1, max_queue))
        self.closing = threading.Event()
        self._stopped = threading.Event()
        self._shutdown_lock = threading.Lock()
        self.httpd = ThreadingHTTPServer((host, port), _handler(self))
        self.httpd.daemon_threads = True
        self.worker = threading.Thread(target=self._work, name="ocrkit-serve-worker", daemon=True)
        self.worker.start()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    # --- lifecycle -----------------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Serve on this thread until :meth:`shutdown` (from another thread or a signal)."""
        log.info("serving %s (%s) on %s", self.backend.name, self.backend.kind, self.url)
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> ModelServer:
        """Serve from a background thread (tests, notebooks); returns self."""
        self._thread = threading.Thread(target=self.serve_forever, name="ocrkit-serve", daemon=True)
        self._thread.start()
        return self

    def shutdown(self, drain: bool = True, timeout: float = 30.0) -> None:
        """Stop accepting, finish (``drain``) or refuse the queued requests, join the worker."""
        with self._shutdown_lock:
            if not self._stopped.is_set():
                self._shutdown(drain, timeout)

    def _shutdown(self, drain: bool, timeout: float) -> None:
        self.closing.set()
        if not drain:
            while True:
                try:
                    job = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job.error = RequestError(
                        503, "the server is shutting down", kind="server_error"
                    )
                    job.done.set()
        self.jobs.put(None)
        self.worker.join(timeout)
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout)
        self._stopped.set()
        log.info("server stopped after %d answered requests", self.answered)

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    # --- work ----------------------------------------------------------------------------------

    def submit(self, request: ChatRequest) -> tuple[str, dict[str, Any]]:
        """Queue ``request`` and wait for its answer; raises :class:`RequestError`."""
        if self.closing.is_set():
            raise RequestError(503, "the server is shutting down", kind="server_error")
        job = _Job(request)
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            raise RequestError(
                503,
                f"the server is busy ({self.max_queue} requests queued); retry shortly",
                kind="server_error",
            ) from None
        if not job.done.wait(self.timeout):
            job.cancelled = True
            raise RequestError(504, f"no answer within {self.timeout:.0f} s", kind="server_error")
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            if job.cancelled:
                continue
            try:
                job.result = self.backend.answer(job.request)
                self.answered += 1
            except RequestError as exc:
                job.error = exc
            except Exception as exc:  # the model failed on this input; the server goes on
                log.exception("model failure")
                job.error = RequestError(
                    500, f"the model failed: {type(exc).__name__}: {exc}", kind="server_error"
                )
            finally:
                job.done.set()
            if (
                self.max_requests is not None
                and self.answered >= self.max_requests
                and not self.closing.is_set()
            ):
                log.info("answered %d requests (--max-requests); stopping", self.answered)
                threading.Thread(target=self.shutdown, daemon=True).start()


def _handler(server: ModelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "ocrkit-serve"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug("%s %s", self.address_string(), format % args)

        def _send(
            self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, err: RequestError) -> None:
            headers = {"Retry-After": "1"} if err.status == 503 else None
            self._send(err.status, err.body(), headers)

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0].rstrip("/")
            if path in ("/health", "/v1/health"):
                status = "stopping" if server.closing.is_set() else "ok"
                self._send(
                    200,
                    {"status": status, "queued": server.jobs.qsize(), "answered": server.answered},
                )
            elif path in ("/v1/models", "/models"):
                model = {
                    "id": server.backend.name,
                    "object": "model",
                    "created": int(time.time()),
                    "owned_by": "ocrkit",
                    "ocrkit_kind": server.backend.kind,
                }
                self._send(200, {"object": "list", "data": [model]})
            else:
                self._error(
                    RequestError(
                        404, f"no such endpoint {self.path!r}; use POST /v1/chat/completions"
                    )
                )

        def do_POST(self) -> None:  # noqa: N802
            try:
                if self.path.split("?", 1)[0].rstrip("/") not in CHAT_PATHS:
                    raise RequestError(
                        404, f"no such endpoint {self.path!r}; use POST /v1/chat/completions"
                    )
                body = self._read_json()
                request = parse_chat_request(body)
                if request.model not in ("", server.backend.name):
                    raise RequestError(
                        404,
                        f"model {request.model!r} is not served here; use {server.backend.name!r}",
                        "model",
                        "model_not_found",
                    )
                text, extra = server.submit(request)
                self._send(200, chat_reply(server.backend.name, text, extra=extra))
            except RequestError as err:
                self._error(err)

        def _read_json(self) -> Any:
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                raise RequestError(411, "send a Content-Length header")
            if int(length) > server.max_body_bytes:
                raise RequestError(413, f"request body over {server.max_body_bytes} bytes")
            raw = self.rfile.read(int(length))
            try:
                return json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise RequestError(400, f"the body is not valid JSON ({exc})") from None

        def _not_allowed(self) -> None:
            self._error(RequestError(405, f"method {self.command} is not allowed; use POST or GET"))

        do_PUT = do_DELETE = do_PATCH = _not_allowed  # noqa: N815

    return Handler
