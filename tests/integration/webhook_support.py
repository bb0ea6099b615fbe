"""A real HTTP receiver for webhook tests: http.server on 127.0.0.1, scripted answers, a ledger."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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

    def next_status(self) -> int:
        with self.lock:
            return self.script.pop(0) if self.script else self.default

    def ids(self, path: str = "/hook") -> list[str]:
        return [r.doc["id"] for r in self.got if r.path == path]


@contextmanager
def receiver() -> Iterator[Receiver]:
    """A receiver on a free port of 127.0.0.1: POST /hook answers per its script; 302 goes to /other."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with state.lock:
                state.got.append(Received(self.path, dict(self.headers.items()), body))
            status = state.next_status() if self.path == "/hook" else 200
            self.send_response(status)
            if status in (301, 302, 307, 308):
                self.send_header("Location", "/other")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/hook"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
