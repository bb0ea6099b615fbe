"""A real HTTP receiver for webhook tests: http.server on 127.0.0.1, scripted answers, a ledger."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def doc(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded


@dataclass
class Receiver:
    """What the receiver got, and what it answers next (a status per request, then ``default``)."""

    url: str = ""
    got: list[Received] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    default: int = 200
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Called after a POST is recorded and before it is answered (another writer at work).
    before_answer: Callable[[], None] | None = None

    def next_status(self) -> int:
        with self.lock:
            return self.script.pop(0) if self.script else self.default

    def ids(self, path: str = "/hook") -> list[str]:
        return [r.doc["id"] for r in self.got if r.path == path]


@contextmanager
def receiver(tls: tuple[Path, Path] | None = None) -> Iterator[Receiver]:
    """A receiver on a free port of 127.0.0.1: POST /hook answers per its script; 302 goes to /other.

    ``tls`` (certificate, key): serve https with that certificate.
    """
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with state.lock:
                state.got.append(Received(self.path, dict(self.headers.items()), body))
            if state.before_answer is not None:
                state.before_answer()
            status = state.next_status() if self.path == "/hook" else 200
            self.send_response(status)
            if status in (301, 302, 307, 308):
                self.send_header("Location", "/other")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if tls is not None else "http"
    state.url = f"{scheme}://127.0.0.1:{server.server_port}/hook"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made by the openssl command."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key
