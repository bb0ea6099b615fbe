"""The fake server's HTTP side: the standard library's ``ThreadingHTTPServer``.

A thread per connection, HTTP/1.1 keep-alive, no per-request logging. Answers
are JSON, written with a ``Content-Length`` or, when the server is told to,
chunked (``Transfer-Encoding: chunked``) and/or gzip-compressed
(``Content-Encoding: gzip``, only to a client that sent ``Accept-Encoding: gzip``),
so that a client is tested against every way Twilio's edge may frame an answer.
"""

from __future__ import annotations

import gzip
import io
import socket
import struct
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from drip.testing.fake_twilio.codes import error_body

__all__ = ["Application", "FakeHTTPServer"]

#: Bytes per chunk of a chunked answer (small, so that an answer is several chunks).
CHUNK_SIZE = 256


class Application(Protocol):
    """What the HTTP side hands each request to, and how it frames answers."""

    chunked: bool
    gzip: bool

    def handle(
        self, method: str, target: str, authorization: str | None, body: bytes, arrived: float
    ) -> tuple[int, bytes]: ...

    def track(self, conn: socket.socket, *, add: bool) -> None: ...


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
    _stamps: _StampedReader | None

    def setup(self) -> None:
        super().setup()
        self._stamps = _stamped(self.connection)
        if self._stamps is not None:
            self.rfile.close()  # the makefile() reader would hold the socket open
            self.rfile = io.BufferedReader(self._stamps)
        self.server.app.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.app.track(self.connection, add=False)

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
        # The request's head came with its first bytes (a client waits for each answer,
        # so the buffer held nothing before it): the latest read's stamp is its arrival.
        stamped = self._stamps.received_at if self._stamps is not None else None
        arrived = time.time() if stamped is None else stamped
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
                self.command, self.path, self.headers.get("Authorization"), body, arrived
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


#: ``SO_TIMESTAMPNS`` (Linux; Python's socket module does not name it): the kernel stamps
#: each read with the time the bytes reached the socket.
_SO_TIMESTAMPNS = 35
_STAMP_SPACE = socket.CMSG_SPACE(16)  # struct timespec: two 64-bit integers


class _StampedReader(io.RawIOBase):
    """A connection's bytes, with the kernel's receive time of the latest read.

    A request's arrival is when its bytes reached the server's socket, as at
    Twilio's edge. Stamping it when a handler thread gets to it instead adds
    this process's scheduling delay: on a loaded machine (a fault server and
    the test itself sharing the GIL, other tests on the cores) that bunches
    arrivals that came evenly paced, so a sender seems to exceed its rate.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.received_at: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        nbytes, ancillary, _flags, _address = self._sock.recvmsg_into([buffer], _STAMP_SPACE)
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= 16:
                seconds, nanoseconds = struct.unpack("qq", data[:16])
                self.received_at = seconds + nanoseconds / 1e9
        return nbytes


def _stamped(sock: socket.socket) -> _StampedReader | None:
    """A :class:`_StampedReader` of ``sock``, or None where the kernel gives no stamps."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return None
    return _StampedReader(sock)
