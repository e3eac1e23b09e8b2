"""An OpenAI-compatible HTTP server for ocrkit models: uvicorn (HTTP/1.1, keep-alive) + Starlette.

Endpoints: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /health`` (see
:mod:`ocrkit.serve.app`). How it holds load and bounds memory:

* Admission: at most ``max_queue + 1`` chat requests are in flight (body read, decoded, queued
  or being answered). One more is refused at once, before its body is read, with ``503`` and
  ``Retry-After`` (OpenAI clients and the TABench runner retry it). The listen backlog is 2048,
  so a burst of clients gets answers, not connection resets.
* Limits: a body over ``max_body_bytes`` is a ``413`` (from ``Content-Length``, before reading);
  a body must arrive within ``body_timeout`` (``408``), the request line and headers within
  ``header_timeout`` of connecting or of the previous response (the connection is closed), an
  idle keep-alive connection closes after ``keep_alive`` seconds. A slow client holds a socket
  on the event loop, never a thread.
* Images: sizes are read from the headers before decoding (:mod:`ocrkit.serve.protocol`);
  ``decode_threads`` threads decode, so at most that many decodes are in memory at once.
* One worker thread runs the model; a request not answered within ``timeout`` gets ``504``.
  A model failure is a ``500`` and the server keeps running.
* :meth:`ModelServer.shutdown` stops accepting connections, answers what is in flight (or
  refuses the queue with ``503`` when ``drain=False``) and joins the worker: a graceful stop on
  SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import socket
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from ocrkit.serve.backends import Backend
from ocrkit.serve.protocol import ChatRequest, ClientGone, RequestError

log = logging.getLogger(__name__)
T = TypeVar("T")
Answer = tuple[str, dict[str, Any]]


@dataclass
class _Job:
    request: ChatRequest
    future: asyncio.Future[tuple[Answer | None, RequestError | None]]
    loop: asyncio.AbstractEventLoop
    cancelled: bool = False

    def resolve(self, result: Answer | None, error: RequestError | None) -> None:
        """Hand the answer to the event loop (called from the worker thread)."""

        def _set() -> None:
            if not self.future.done():
                self.future.set_result((result, error))

        with contextlib.suppress(RuntimeError):  # a closed loop: the server stopped, nobody waits
            self.loop.call_soon_threadsafe(_set)


def _protocol_class(header_timeout: float) -> type:
    """uvicorn's h11 protocol plus a deadline for the request line and headers.

    uvicorn closes idle keep-alive connections but waits forever for the headers of a request
    that has started arriving; a slow-loris client sending one byte a second would hold its
    socket for good. The deadline starts at connect and after each response; if no new request
    has begun by then, the connection is closed.
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadlineProtocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_deadline()

        def on_response_complete(self) -> None:
            self._arm_header_deadline()  # armed with the finished cycle, before pipelining
            super().on_response_complete()

        def _arm_header_deadline(self) -> None:
            self.loop.call_later(header_timeout, self._header_deadline, self.cycle)

        def _header_deadline(self, cycle: object) -> None:
            if self.cycle is cycle and not self.transport.is_closing():
                log.debug("closing a connection that sent no request in %g s", header_timeout)
                self.transport.close()

    return HeaderDeadlineProtocol


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    """A listening TCP socket; ``proto=IPPROTO_TCP`` matters: asyncio turns Nagle off only on
    sockets that say they are TCP (with ``proto=0`` every reply waits ~40 ms for a delayed ACK)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


class ModelServer:
    """Serves ``backend`` on ``host:port`` (port 0 picks a free one; see :attr:`url`).

    The socket is bound at construction, so :attr:`url` is known (and a busy port fails) before
    serving starts.
    """

    def __init__(
        self,
        backend: Backend,
        host: str = "127.0.0.1",
        port: int = 8000,
        max_queue: int = 16,
        timeout: float = 600.0,
        max_body_bytes: int = 32 * 1024 * 1024,
        max_requests: int | None = None,
        header_timeout: float = 10.0,
        body_timeout: float = 60.0,
        keep_alive: float = 5.0,
        decode_threads: int = 2,
        backlog: int = 2048,
    ) -> None:
        import uvicorn

        from ocrkit.serve.app import build_app

        self.backend = backend
        self.max_queue, self.timeout, self.max_body_bytes = (
            max(1, max_queue),
            timeout,
            max_body_bytes,
        )
        self.max_requests = max_requests
        self.header_timeout, self.body_timeout = float(header_timeout), float(body_timeout)
        self.answered = 0
        self.abandoned = 0  # queued requests dropped because their client disconnected
        self.in_flight = 0  # chat requests admitted and not yet answered (event loop only)
        self.jobs: queue.Queue[_Job | None] = queue.Queue()
        self.closing = threading.Event()
        self._stopped = threading.Event()
        self._shutdown_lock = threading.Lock()
        self.socket = _listen(host, port, backlog)
        self._address: tuple[str, int] = self.socket.getsockname()[:2]
        config = uvicorn.Config(
            build_app(self),
            http=_protocol_class(self.header_timeout),
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_keep_alive=keep_alive,  # type: ignore[arg-type]
            backlog=backlog,
            server_header=False,
        )
        self.uvicorn = uvicorn.Server(config)
        self._decoders = ThreadPoolExecutor(max(1, decode_threads), "ocrkit-serve-decode")
        self.worker = threading.Thread(target=self._work, name="ocrkit-serve-worker", daemon=True)
        self.worker.start()
        self._thread: threading.Thread | None = None

    @property
    def capacity(self) -> int:
        """Chat requests admitted at once: the queue plus the one the model is answering."""
        return self.max_queue + 1

    @property
    def queued(self) -> int:
        return self.jobs.qsize()

    @property
    def url(self) -> str:
        host, port = self._address
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/v1"

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> ModelServer:
        """Serve from a background thread (the CLI, tests, notebooks); returns self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="ocrkit-serve", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` (from another thread or a signal handler).

        uvicorn runs on a background thread so that the caller's signal handlers stay in charge.
        """
        log.debug("serving %s (%s) on %s", self.backend.name, self.backend.kind, self.url)
        self.start()
        assert self._thread is not None
        while self._thread.is_alive():
            self._thread.join(0.5)  # wakes up for signals

    def _serve(self) -> None:
        try:
            asyncio.run(self.uvicorn.serve(sockets=[self.socket]))
        except Exception:
            log.exception("the HTTP server failed")
        finally:
            self.socket.close()

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
                    job.resolve(
                        None, RequestError(503, "the server is shutting down", kind="server_error")
                    )
        self.uvicorn.config.timeout_graceful_shutdown = max(1, round(timeout))
        self.uvicorn.should_exit = True  # closes the listener, lets in-flight requests finish
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout + 5)
        else:
            self.socket.close()
        self.jobs.put(None)
        if self.worker is not threading.current_thread():
            self.worker.join(timeout)
        self._decoders.shutdown(wait=False, cancel_futures=True)
        self._stopped.set()
        log.info("server stopped after %d answered requests", self.answered)

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    # --- work ----------------------------------------------------------------------------------

    async def run_decode(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on a decode thread (JSON and images stay off the event loop)."""
        return await asyncio.get_running_loop().run_in_executor(self._decoders, fn, *args)

    async def answer(
        self, request: ChatRequest, gone: Coroutine[Any, Any, object] | None = None
    ) -> Answer:
        """Queue ``request`` for the model and wait for its answer; raises :class:`RequestError`.

        ``gone`` completes when the client disconnects: a request still queued is then dropped
        (:class:`ClientGone`) instead of costing the model its time.
        """
        loop = asyncio.get_running_loop()
        job = _Job(request, loop.create_future(), loop)
        self.jobs.put(job)
        watcher = asyncio.ensure_future(gone) if gone is not None else None
        try:
            async with asyncio.timeout(self.timeout):
                if watcher is not None:
                    await asyncio.wait({job.future, watcher}, return_when=asyncio.FIRST_COMPLETED)
                    if not job.future.done():
                        job.cancelled = True
                        self.abandoned += 1
                        raise ClientGone
                result, error = await asyncio.shield(job.future)
        except TimeoutError:
            job.cancelled = True
            raise RequestError(
                504, f"no answer within {self.timeout:.0f} s", kind="server_error"
            ) from None
        finally:
            if watcher is not None:
                watcher.cancel()
        if error is not None:
            raise error
        assert result is not None
        return result

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            if job.cancelled:
                continue
            result, error = None, None
            try:
                result = self.backend.answer(job.request)
                self.answered += 1
            except RequestError as exc:
                error = exc
            except Exception as exc:  # the model failed on this input; the server goes on
                log.exception("model failure")
                error = RequestError(
                    500, f"the model failed: {type(exc).__name__}: {exc}", kind="server_error"
                )
            job.resolve(result, error)
            if (
                self.max_requests is not None
                and self.answered >= self.max_requests
                and not self.closing.is_set()
            ):
                log.info("answered %d requests (--max-requests); stopping", self.answered)
                threading.Thread(target=self.shutdown, daemon=True).start()
