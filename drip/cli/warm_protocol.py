"""The messages between a ``drip`` client and a warm server: framed JSON, with file descriptors.

Each message is a 4-byte big-endian length and a JSON object. The client's
request carries its standard streams as ``SCM_RIGHTS`` file descriptors
(the server's child then writes to the very same terminal, pipe or file,
and ``isatty`` answers as it would have). The exchange:

1. client → server: ``{"op": "run", "argv", "cwd", "env", "umask", "streams"}`` + fds 0, 1, 2
   (or ``{"op": "status"}`` / ``{"op": "stop"}``, answered with one message);
2. child → client: ``{"started": pid}``; the child waits;
3. client → child: ``{"go": true}``: from here on the command runs in the child,
   and the client never runs it itself; before it, any failure makes the client
   run the command in its own process, and the child exits without running it
   (so a command is neither lost nor run twice);
4. server → client: ``{"exit": code}`` or ``{"signal": number}`` once the child is reaped.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import socket
import struct
from typing import Any

__all__ = ["ProtocolError", "receive", "send"]

_HEADER = struct.Struct(">I")
#: Large enough for any environment; a bigger message is refused, not read.
_MAX_MESSAGE = 16 * 1024 * 1024
_MAX_FDS = 3


class ProtocolError(Exception):
    """The peer closed the connection early or sent something malformed."""


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    """Send ``message`` (and ``fds`` with its first byte)."""
    body = json.dumps(message, separators=(",", ":")).encode()
    data = _HEADER.pack(len(body)) + body
    if fds:
        sent = sock.sendmsg(
            [data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
        )
        data = data[sent:]
    if data:
        sock.sendall(data)


def receive(sock: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """The next message and the file descriptors that came with it."""
    fds: list[int] = []
    buffer = bytearray()
    size: int | None = None
    while size is None or len(buffer) < _HEADER.size + size:
        want = _HEADER.size if size is None else _HEADER.size + size - len(buffer)
        data, ancillary, _flags, _addr = sock.recvmsg(
            max(want, 1), socket.CMSG_SPACE(_MAX_FDS * array.array("i").itemsize)
        )
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                got = array.array("i")
                got.frombytes(payload[: len(payload) - len(payload) % got.itemsize])
                fds.extend(got)
        if not data:
            _close_all(fds)
            raise ProtocolError("connection closed")
        buffer += data
        if size is None and len(buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buffer)
            if size > _MAX_MESSAGE:
                _close_all(fds)
                raise ProtocolError(f"message of {size} bytes")
    try:
        message = json.loads(bytes(buffer[_HEADER.size :]))
    except ValueError as exc:
        _close_all(fds)
        raise ProtocolError(f"malformed message: {exc}") from exc
    if not isinstance(message, dict):
        _close_all(fds)
        raise ProtocolError("malformed message: not an object")
    return message, fds


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
