"""A lean HTTP client for the twilio SDK: HTTP/1.1 on kept-alive sockets, no ``requests``.

The SDK stays the interface (it builds every request, parses every answer,
raises its own errors); this is its documented extension point for HTTP, a
custom :class:`twilio.http.HttpClient`. The stock ``TwilioHttpClient`` runs
each request through ``requests`` (prepare, merge environment settings,
hooks, adapters, cookie jar), and even urllib3 alone (its pool, its
``http.client`` request and the ``email`` parser reading the answer's
headers) cost about as much CPU as the rest of a send: here a request is
one ``sendall`` of bytes built in one go on a kept-alive socket, and the
answer is read with a buffered reader (status line, headers, then
``Content-Length`` bytes or chunks).

What stays exactly as with ``requests``:

- the request: method, URL (``base_url``, if given, replaces scheme and host
  and is kept as a path prefix), query string and form body encoded the same
  way (``None`` values dropped, sequences repeated, ``quote_plus``), JSON
  bodies for JSON content types, HTTP basic auth, the SDK's headers, and
  ``Accept-Encoding: gzip, deflate`` (a compressed answer is decoded);
- never a retry at this level and no redirects: a request that may have
  reached Twilio is never sent again behind the caller's back; an idle
  kept-alive connection the server has closed is noticed before it is used
  (as urllib3 does) and replaced by a new one;
- the errors, as the ``requests`` exceptions ``requests`` raises, wrapping
  urllib3's, so the transport's classification is unchanged: a connection
  that could not be opened is ``requests.ConnectionError`` caused by
  ``NewConnectionError`` (nothing left), a connect timeout ``ConnectTimeout``,
  a read timeout ``ReadTimeout``, a connection lost mid-request
  ``ConnectionError`` caused by ``ProtocolError`` (maybe sent).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import select
import socket
import ssl
import zlib
from base64 import b64encode
from collections.abc import Iterable, Mapping
from typing import IO
from urllib.parse import quote_plus, urlsplit

import requests
from twilio.http import HttpClient
from twilio.http.response import Response
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from drip.errors import ConfigError

__all__ = ["LeanHttpClient", "form_encode"]

_logger = logging.getLogger("twilio.http_client")
_JSON_TYPES = ("application/json", "application/scim+json")
#: Methods that carry a body: without one they still say ``Content-Length: 0``
#: (as ``http.client`` does).
_BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))
_MAX_LINE = 65536
_MAX_HEADERS = 100

#: Bytes ``quote_plus`` leaves alone (besides the space, which becomes "+").
_UNSAFE = re.compile(rb"[^A-Za-z0-9_.\-~ ]")
_PERCENT = {bytes((i,)): f"%{i:02X}".encode("ascii") for i in range(256)}


def _percent(match: re.Match[bytes]) -> bytes:
    return _PERCENT[match.group()]


def _quote_plus(value: object) -> str:
    """``urllib.parse.quote_plus(str(value))`` (bytes as they are), one regex pass instead of
    one Python call per byte."""
    data = value if isinstance(value, bytes) else str(value).encode("utf-8")
    return _UNSAFE.sub(_percent, data).replace(b" ", b"+").decode("ascii")


@functools.lru_cache(maxsize=256)
def _quoted_key(key: str) -> str:
    return quote_plus(key)


#: A text value, encoded once: a sender's number, the status callback URL, a step's body
#: without variables recur in every request. Only ``str``: the cache would take ``True``
#: for ``1``.
_quoted_text = functools.lru_cache(maxsize=1024)(_quote_plus)
_CACHED_TEXT = 512


def form_encode(values: Mapping[str, object] | None) -> str:
    """``values`` form-encoded the way ``requests`` encodes a dict: ``urlencode`` of its pairs,
    sequences repeated, None dropped."""
    out: list[str] = []
    for key, value in (values or {}).items():
        if value is None:
            continue
        name = _quoted_key(key) if isinstance(key, str) else _quote_plus(key)
        if type(value) is str and len(value) <= _CACHED_TEXT:
            out.append(f"{name}={_quoted_text(value)}")
            continue
        if type(value) in _SCALARS:  # the common case, without the ABC check below
            out.append(f"{name}={_quote_plus(value)}")
            continue
        items: Iterable[object] = (
            value
            if isinstance(value, Iterable) and not isinstance(value, str | bytes)
            else (value,)
        )
        out.extend(f"{name}={_quote_plus(item)}" for item in items if item is not None)
    return "&".join(out)


_SCALARS = frozenset((str, int, bool, float, bytes))


class _Target:
    """Where a request goes, from its URL: kept per URL (the SDK asks for the same few)."""

    __slots__ = ("host", "host_header", "path", "port", "query", "tls")

    def __init__(self, url: str, base: tuple[str, str, str] | None) -> None:
        parts = urlsplit(url)
        scheme, netloc, path = parts.scheme, parts.netloc, parts.path
        if base is not None:
            scheme, netloc, prefix = base
            path = prefix + path
            parts = urlsplit(f"{scheme}://{netloc}")
        if scheme not in ("http", "https") or not parts.hostname:
            raise requests.exceptions.InvalidURL(f"not an http(s) URL: {url!r}")
        self.tls = scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.host_header = netloc.rpartition("@")[2]
        self.path = path or "/"
        self.query = parts.query if base is None else urlsplit(url).query


class _Connection:
    """One kept-alive socket and the buffered reader of its answers."""

    __slots__ = ("poller", "reader", "sock", "timeout")

    def __init__(self, sock: socket.socket, timeout: float | None) -> None:
        self.sock = sock
        self.timeout = timeout
        self.reader: IO[bytes] = sock.makefile("rb")
        self.poller = select.poll()
        self.poller.register(sock, select.POLLIN)

    def dropped(self) -> bool:
        """Whether the server closed it (or sent something unasked) while it was idle."""
        try:
            return bool(self.poller.poll(0))
        except OSError:
            return True

    def close(self) -> None:
        try:
            self.reader.close()
        finally:
            self.sock.close()


class LeanHttpClient(HttpClient):  # type: ignore[misc]  # the SDK ships no py.typed
    """The SDK's ``HttpClient`` on kept-alive sockets (at most ``maxsize`` idle per host)."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float | None = None,
        maxsize: int = 32,
    ) -> None:
        super().__init__(_logger, False, timeout)
        self._base: tuple[str, str, str] | None = None
        if base_url is not None:
            parts = urlsplit(base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigError(
                    f"Twilio base URL must be http(s)://host[:port], not {base_url!r}"
                )
            self._base = (parts.scheme, parts.netloc, parts.path.rstrip("/"))
        self._maxsize = maxsize
        self._tls: ssl.SSLContext | None = None
        # Idle connections per (host, port, tls). A list's pop and append are atomic,
        # so threads sharing the client never share a connection.
        self._idle: dict[tuple[str, int, bool], list[_Connection]] = {}
        self._targets: dict[str, _Target] = {}
        self._auth: dict[tuple[str, str], str] = {}

    def request(  # noqa: PLR0917  # the SDK's HttpClient.request signature
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,  # never followed (see the module)
    ) -> Response:
        if timeout is None:
            timeout = self.timeout
        elif timeout <= 0:
            raise ValueError(timeout)
        target = self._target(url)
        method = method.upper()
        encoded = form_encode(params) if params else ""
        query = "&".join(q for q in (target.query, encoded) if q)
        path = f"{target.path}?{query}" if query else target.path
        lines = [f"{method} {path} HTTP/1.1", f"Host: {target.host_header}"]
        given = headers or {}
        if "Accept-Encoding" not in given:
            lines.append("Accept-Encoding: gzip, deflate")
        lines.extend(f"{name}: {value}" for name, value in given.items())
        if auth is not None:
            lines.append(f"Authorization: {self._authorization(auth[0], auth[1])}")
        body = b""
        if data is not None:
            content_type = given.get("Content-Type")
            if content_type in _JSON_TYPES:
                body = json.dumps(data).encode()
            else:
                body = form_encode(data).encode("ascii")
                if content_type is None:
                    lines.append("Content-Type: application/x-www-form-urlencoded")
        if body or method in _BODY_METHODS:
            lines.append(f"Content-Length: {len(body)}")
        lines.append("\r\n")
        raw = "\r\n".join(lines).encode("latin-1") + body
        if self.logger.isEnabledFor(logging.INFO):
            self.log_request({"method": method, "url": url, "params": None, "headers": headers})
        self._test_only_last_response = None
        status, text, answer_headers = self._exchange(target, method, raw, timeout, url)
        response = Response(status, text, answer_headers)
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info("Response Status Code: %s", status)
        self._test_only_last_response = response
        return response

    def _exchange(
        self, target: _Target, method: str, raw: bytes, timeout: float | None, url: str
    ) -> tuple[int, str, dict[str, str]]:
        """Send ``raw`` on a kept-alive (or new) connection and read the whole answer."""
        key = (target.host, target.port, target.tls)
        idle = self._idle.setdefault(key, [])
        conn: _Connection | None = None
        while idle:
            try:
                candidate = idle.pop()
            except IndexError:  # another thread took the last one
                break
            if candidate.dropped():
                candidate.close()
                continue
            conn = candidate
            break
        if conn is None:
            conn = self._connect(target, timeout)
        elif conn.timeout != timeout:
            conn.sock.settimeout(timeout)
            conn.timeout = timeout
        try:
            conn.sock.sendall(raw)
            status, text, answer_headers, keep = _read_answer(conn.reader, method)
        except Exception as exc:
            conn.close()
            raise _answer_error(exc, url) from None  # its __cause__ is the urllib3 error
        except BaseException:
            conn.close()
            raise
        if keep and len(idle) < self._maxsize:
            idle.append(conn)
        else:
            conn.close()
        return status, text, answer_headers

    def _connect(self, target: _Target, timeout: float | None) -> _Connection:
        try:
            sock = socket.create_connection((target.host, target.port), timeout)
        except TimeoutError:
            late = ConnectTimeoutError(
                None, f"Connection to {target.host} timed out. (connect timeout={timeout})"
            )
            raise requests.ConnectTimeout(late) from late
        except OSError as exc:
            refused = NewConnectionError(None, f"Failed to establish a new connection: {exc}")  # type: ignore[arg-type]
            refused.__cause__ = exc
            raise requests.ConnectionError(refused) from refused
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if target.tls:
                sock = self._tls_context().wrap_socket(sock, server_hostname=target.host)
        except BaseException as exc:
            sock.close()
            if isinstance(exc, ssl.SSLError | ssl.CertificateError):
                refusal = SSLError(exc)
                raise requests.exceptions.SSLError(refusal) from refusal
            if isinstance(exc, TimeoutError):
                late = ConnectTimeoutError(None, f"TLS handshake with {target.host} timed out")
                raise requests.ConnectTimeout(late) from late
            if isinstance(exc, OSError):
                lost = ProtocolError("Connection aborted.", exc)
                raise requests.ConnectionError(lost) from lost
            raise
        return _Connection(sock, timeout)

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            try:  # the CA bundle ``requests`` uses, so https behaves as with the SDK's client
                import certifi

                cafile: str | None = certifi.where()
            except ImportError:  # pragma: no cover - certifi comes with requests
                cafile = None
            self._tls = ssl.create_default_context(cafile=cafile)
        return self._tls

    def _target(self, url: str) -> _Target:
        target = self._targets.get(url)
        if target is None:
            target = _Target(url, self._base)
            if len(self._targets) < 1024:  # the SDK's URLs are few; ids in paths are not
                self._targets[url] = target
        return target

    def _authorization(self, user: str, password: str) -> str:
        header = self._auth.get((user, password))
        if header is None:
            token = b64encode(f"{user}:{password}".encode()).decode("ascii")
            header = self._auth[(user, password)] = f"Basic {token}"
        return header

    def close(self) -> None:
        """Close the kept-alive connections."""
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            while connections:
                connections.pop().close()


def _read_line(reader: IO[bytes]) -> bytes:
    line = reader.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise ProtocolError("Connection aborted.", "answer line too long")
    return line


def _read_answer(reader: IO[bytes], method: str) -> tuple[int, str, dict[str, str], bool]:
    """Status, body text, headers, and whether the connection may be kept, of one answer."""
    while True:
        line = _read_line(reader)
        if not line:
            raise ProtocolError(
                "Connection aborted.", ConnectionError("Remote end closed connection")
            )
        version, _, rest = line.decode("latin-1").partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/") or not code.isdigit():
            raise ProtocolError("Connection aborted.", f"not an HTTP status line: {line!r}")
        status = int(code)
        headers: dict[str, str] = {}
        lower: dict[str, str] = {}
        for _ in range(_MAX_HEADERS + 1):
            line = _read_line(reader)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip(), value.strip()
            if name in headers:
                headers[name] += ", " + value
            else:
                headers[name] = value
            lname = name.lower()
            lower[lname] = f"{lower[lname]}, {value}" if lname in lower else value
        else:
            raise ProtocolError("Connection aborted.", "too many answer headers")
        if 100 <= status < 200 and status != 101:  # an interim answer: the real one follows
            continue
        break
    keep = version != "HTTP/1.0" and "close" not in lower.get("connection", "").lower()
    if version == "HTTP/1.0" and "keep-alive" in lower.get("connection", "").lower():
        keep = True
    if method == "HEAD" or status in (204, 304):
        body = b""
    elif "chunked" in lower.get("transfer-encoding", "").lower():
        body = _read_chunked(reader)
    elif "content-length" in lower:
        try:
            length = int(lower["content-length"])
        except ValueError as exc:
            raise ProtocolError("Connection aborted.", "bad Content-Length") from exc
        body = reader.read(length)
        if len(body) != length:
            raise ProtocolError(
                "Connection broken: IncompleteRead", f"{len(body)} of {length} bytes read"
            )
    else:  # the answer ends with the connection
        body = reader.read()
        keep = False
    encoding = lower.get("content-encoding", "").strip().lower()
    if encoding and body:
        body = _decode(body, encoding)
    return status, body.decode("utf-8", errors="replace"), headers, keep


def _read_chunked(reader: IO[bytes]) -> bytes:
    parts: list[bytes] = []
    while True:
        line = _read_line(reader)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise ProtocolError("Connection broken: InvalidChunkLength", line) from exc
        if size == 0:
            while _read_line(reader) not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(parts)
        chunk = reader.read(size)
        if len(chunk) != size:
            raise ProtocolError("Connection broken: IncompleteRead", f"{len(chunk)} of {size}")
        parts.append(chunk)
        _read_line(reader)  # the CRLF after the chunk


def _decode(body: bytes, encoding: str) -> bytes:
    try:
        if encoding in ("gzip", "x-gzip"):
            return zlib.decompress(body, 16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:  # raw deflate, without the zlib header
                return zlib.decompress(body, -zlib.MAX_WBITS)
    except zlib.error as exc:
        raise DecodeError(
            f"Received response with content-encoding: {encoding}, but failed to decode it: {exc}"
        ) from exc
    return body  # identity, or one urllib3 would not decode either


def _answer_error(exc: Exception, url: str) -> requests.RequestException:
    """The ``requests`` exception ``requests`` raises for a failure after the connection opened.

    The urllib3 error it wraps is also its ``__cause__`` (``raise ... from``).
    """
    if isinstance(exc, requests.RequestException):
        return exc
    if isinstance(exc, TimeoutError):
        cause: Exception = ReadTimeoutError(None, url, f"Read timed out. ({exc})")  # type: ignore[arg-type]
        error: requests.RequestException = requests.ReadTimeout(cause)
    elif isinstance(exc, ssl.SSLError):
        cause = SSLError(exc)
        error = requests.exceptions.SSLError(cause)
    elif isinstance(exc, DecodeError):
        cause = exc
        error = requests.exceptions.ContentDecodingError(exc)
    elif isinstance(exc, ProtocolError):
        cause = exc
        error = requests.ConnectionError(exc)
    elif isinstance(exc, OSError):
        cause = ProtocolError("Connection aborted.", exc)
        error = requests.ConnectionError(cause)
    else:
        cause = exc
        error = requests.RequestException(exc)
    if cause is not exc:
        cause.__cause__ = exc
    error.__cause__ = cause
    return error
