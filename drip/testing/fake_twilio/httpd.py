"""The fake server's HTTP side: the standard library's ``ThreadingHTTPServer``.

A thread per connection, HTTP/1.1 keep-alive, no per-request logging. Answers
are JSON, written with a ``Content-Length`` or, when the server is told to,
chunked (``Transfer-Encoding: chunked``) and/or gzip-compressed
(``Content-Encoding: gzip``, only to a client that sent ``Accept-Encoding: gzip``),
so that a client is tested against every way Twilio's edge may frame an answer.

A request's arrival (what the carrier's clock and the pacing tests read) is
stamped once, when http.server has read its request line. That stamp includes
the wait of the handler thread for the CPU and for its process's interpreter
lock: a test that judges timing runs the server in its own process
(:class:`~drip.testing.fake_twilio.process.FakeTwilioProcess`).
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from drip.testing.fake_twilio.codes import error_body

__all__ = ["Application", "Connection", "FakeHTTPServer"]

#: Bytes per chunk of a chunked answer (small, so that an answer is several chunks).
CHUNK_SIZE = 256


class Application(Protocol):
    """What the HTTP side hands each request to, and how it frames answers."""

    chunked: bool
    gzip: bool

    def handle(
        self, method: str, target: str, authorization: str | None, body: bytes, arrived: float
    ) -> tuple[int, bytes]: ...

    def track(self, conn: Connection, *, add: bool) -> None: ...


class Connection(Protocol):
    """A client connection the server holds open (kept alive between requests)."""

    def close_now(self) -> None:
        """Shut the connection: its client can send nothing more, its thread ends."""


class FakeHTTPServer(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up stop()
    request_queue_size = 1024  # several client processes connect at once

    def __init__(self, address: tuple[str, int], app: Application) -> None:
        self.app = app
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    # Buffered: the head and body of an answer leave in one write (http.server flushes
    # after each request), not in two segments the client wakes up for separately.
    wbufsize = 64 * 1024
    server: FakeHTTPServer
    #: When the current request arrived (``time.time()``), read once per request.
    arrived: float = 0.0

    def setup(self) -> None:
        super().setup()
        self.server.app.track(self, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.app.track(self, add=False)

    def close_now(self) -> None:
        with contextlib.suppress(OSError):  # already closed by the client
            self.connection.shutdown(socket.SHUT_RDWR)

    def parse_request(self) -> bool:
        # The earliest point http.server hands over: the request line has just been
        # read (a client waits for each answer, so it is this request's first bytes);
        # the headers and the body are read after it.
        self.arrived = time.time()
        return super().parse_request()

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:  # the client closed, or stop() shut the socket
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        return  # no per-request logging: the server is built for load

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._answer(411, error_body(411, 411, "A Content-Length is required"))
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            self._answer(400, error_body(400, 400, "Bad Content-Length"))
            return
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) < length:  # the client went away mid-body
            self.close_connection = True
            return
        try:
            status, payload = self.server.app.handle(
                self.command, self.path, self.headers.get("Authorization"), body, self.arrived
            )
        except Exception as exc:  # a bug in the double must show, not hang the client
            self.close_connection = True
            message = f"fake Twilio server error: {type(exc).__name__}: {exc}"
            self._answer(500, error_body(500, 20500, message))
            raise
        self._answer(status, payload)

    def _answer(self, status: int, payload: bytes) -> None:
        app = self.server.app
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
        if app.gzip and _accepts_gzip(self.headers.get("Accept-Encoding")):
            payload = gzip.compress(payload, compresslevel=1)
            self.send_header("Content-Encoding", "gzip")
        if app.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            payload = _chunked(payload)
        else:
            self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)


def _accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` header admits gzip (named, and not with ``q=0``)."""
    for item in (accept_encoding or "").split(","):
        coding, _, params = item.partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip"):
            quality = params.strip().lower().removeprefix("q=")
            return params.strip() == "" or quality.strip("0.") != ""
    return False


def _chunked(payload: bytes) -> bytes:
    """``payload`` framed as chunks of at most :data:`CHUNK_SIZE` bytes and the last chunk."""
    parts = [
        b"%x\r\n%s\r\n" % (len(piece), piece)
        for piece in (payload[i : i + CHUNK_SIZE] for i in range(0, len(payload), CHUNK_SIZE))
    ]
    return b"".join(parts) + b"0\r\n\r\n"
