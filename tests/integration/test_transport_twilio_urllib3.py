"""The urllib3 HttpClient sends what the SDK's stock requests client sends, and fails alike."""

from __future__ import annotations

import gzip
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import pytest
import trustme
from hypothesis import given
from hypothesis import strategies as st
from twilio.http.http_client import TwilioHttpClient
from urllib3.exceptions import (
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from drip.errors import ConfigError
from drip.transports.base import ErrorClass, OutboundSms, SmsSendError
from drip.transports.twilio_sms import TwilioSmsTransport
from drip.transports.twilio_urllib3 import AnswerTooLargeError, Urllib3HttpClient, form_encode

Seen = tuple[str, str, str, str | None, str | None]
PAYLOAD = b'{"sid": "SM1", "status": "queued", "note": "caf\xc3\xa9"}'


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[Seen]
    payload: bytes = PAYLOAD
    encoding: str | None = None
    close_after: bool = False

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        self.seen.append(
            (
                self.command,
                self.path,
                body,
                self.headers.get("Authorization"),
                self.headers.get("Content-Type"),
            )
        )
        self.send_response(201)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        if self.encoding is not None:
            self.send_header("Content-Encoding", self.encoding)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)
        # Closed without saying so: the client finds out only when it looks again.
        self.close_connection = self.close_after

    do_GET = do_POST = _answer  # noqa: N815 - http.server dispatches on these names

    def log_message(self, *_: object) -> None:  # quiet
        return


def _serve(
    handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None
) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    scheme = "https" if tls else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[Seen]]]:
    seen: list[Seen] = []
    handler = type("Handler", (_Recorder,), {"seen": seen})
    for base in _serve(handler):
        yield base, seen


def _call(client: object, base: str, method: str) -> tuple[int, str]:
    response = client.request(  # type: ignore[attr-defined]
        method,
        f"{base}/2010-04-01/Accounts/AC1/Messages.json",
        params={"PageSize": 50, "To": "+16175550123", "Skip": None},
        data={"Body": "Hi & bye = 100% ✓", "MediaUrl": ["a", "b"], "Unset": None, "N": 3},
        headers={"User-Agent": "twilio-python", "Accept": "application/json"},
        auth=("AC1", "tok:en"),
    )
    return response.status_code, response.text


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_the_client_sends_the_same_request_as_the_stock_one(
    recorder: tuple[str, list[Seen]], method: str
) -> None:
    """Method, path, query string, form body, basic auth and content type match requests'."""
    base, seen = recorder
    stock = _call(TwilioHttpClient(timeout=5), base, method)
    ours = _call(Urllib3HttpClient(timeout=5), base, method)
    assert ours == stock == (201, '{"sid": "SM1", "status": "queued", "note": "café"}')
    assert len(seen) == 2
    assert seen[1] == seen[0]
    assert "MediaUrl=a&MediaUrl=b" in seen[0][2] and "Unset" not in seen[0][2]


def test_the_base_url_replaces_scheme_and_host_and_keeps_its_path(
    recorder: tuple[str, list[Seen]],
) -> None:
    """With a base URL the request goes there, under its path, whatever host the SDK named."""
    base, seen = recorder
    client = Urllib3HttpClient(base + "/prefix/", timeout=5)
    status, _ = _call(client, "https://api.twilio.com", "GET")
    assert status == 201
    assert seen[0][1].startswith("/prefix/2010-04-01/Accounts/AC1/Messages.json?PageSize=50")


def test_a_refused_connection_is_a_new_connection_error() -> None:
    """Nothing listening: NewConnectionError, the error that says nothing left."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(NewConnectionError):
        _call(Urllib3HttpClient(timeout=2), f"http://127.0.0.1:{port}", "POST")


def test_a_silent_server_is_a_read_timeout_and_the_request_is_made_once() -> None:
    """A server that never answers: ReadTimeoutError (maybe sent), and no second connection."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with pytest.raises(ReadTimeoutError):
            _call(Urllib3HttpClient(timeout=0.3), f"http://127.0.0.1:{port}", "POST")
        first, _ = listener.accept()
        first.close()
        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):
            listener.accept()


def test_a_connection_lost_before_the_answer_is_a_protocol_error_that_may_have_sent() -> None:
    """Closed after the request arrived: ProtocolError, not NewConnectionError (maybe sent)."""
    seen: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def drop() -> None:
            conn, _ = listener.accept()
            with conn:
                seen.append(conn.recv(65536))

        thread = threading.Thread(target=drop)
        thread.start()
        with pytest.raises(ProtocolError):
            _call(
                Urllib3HttpClient(timeout=5),
                f"http://127.0.0.1:{listener.getsockname()[1]}",
                "POST",
            )
        thread.join(5)
    assert len(seen) == 1 and seen[0].startswith(b"POST /2010-04-01/")


def test_a_base_url_that_is_not_http_is_refused() -> None:
    """A base URL without http(s) and a host is a configuration error naming it."""
    with pytest.raises(ConfigError, match="ftp://x"):
        Urllib3HttpClient("ftp://x")


@given(
    st.dictionaries(
        st.text(max_size=8),
        st.one_of(
            st.none(),
            st.text(max_size=30),
            st.integers(),
            st.booleans(),
            st.lists(st.one_of(st.none(), st.text(max_size=10)), max_size=3),
        ),
        max_size=6,
    )
)
def test_the_form_encoding_is_urlencode_of_the_pairs_requests_makes(
    values: dict[str, object],
) -> None:
    """Any text, number, flag or list encodes as urlencode (quote_plus) of requests' pairs."""
    pairs = [
        (key, item)
        for key, value in values.items()
        for item in (value if isinstance(value, list) else [value])
        if item is not None
    ]
    assert form_encode(values) == urlencode(pairs)


def test_a_kept_alive_connection_the_server_closed_is_replaced_before_use() -> None:
    """An idle connection the server closed is not written to: a new one carries the request."""
    seen: list[Seen] = []
    handler = type("Handler", (_Recorder,), {"seen": seen, "close_after": True})
    for base in _serve(handler):
        client = Urllib3HttpClient(timeout=5)
        assert _call(client, base, "POST")[0] == 201
        time.sleep(0.1)  # the server's close reaches the client's idle connection
        assert _call(client, base, "POST")[0] == 201
    assert len(seen) == 2


def test_an_answer_over_the_size_cap_is_refused() -> None:
    """A body longer than max_answer_bytes raises AnswerTooLargeError instead of being read whole."""
    handler = type("Handler", (_Recorder,), {"seen": [], "payload": b"x" * 5000})
    for base in _serve(handler):
        client = Urllib3HttpClient(timeout=5, max_answer_bytes=4096)
        with pytest.raises(AnswerTooLargeError, match="4096 bytes"):
            _call(client, base, "POST")
        assert _call(Urllib3HttpClient(timeout=5, max_answer_bytes=5000), base, "POST")[0] == 201


def test_the_size_cap_counts_the_decompressed_answer() -> None:
    """A small gzip answer that inflates past the cap is refused too (a compression bomb)."""
    bomb = gzip.compress(b"0" * 1_000_000)
    handler = type("Handler", (_Recorder,), {"seen": [], "payload": bomb, "encoding": "gzip"})
    for base in _serve(handler):
        with pytest.raises(AnswerTooLargeError):
            _call(Urllib3HttpClient(timeout=5, max_answer_bytes=100_000), base, "POST")


def test_an_oversized_answer_to_a_send_is_unknown_not_resent() -> None:
    """The transport takes an over-cap answer as maybe sent: unknown, one request, no retry."""
    seen: list[Seen] = []
    handler = type("Handler", (_Recorder,), {"seen": seen, "payload": b"{" * 20_000_000})
    for base in _serve(handler):
        transport = TwilioSmsTransport("AC" + "0" * 32, "token", base_url=base, timeout=5)
        with pytest.raises(SmsSendError) as info:
            transport.send_sms(OutboundSms("+16175550100", "+16175550123", "Hi"))
        transport.close()
    assert info.value.error_class is ErrorClass.UNKNOWN
    assert isinstance(info.value.__cause__, AnswerTooLargeError)
    assert len(seen) == 1


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An https recorder with a certificate from a throwaway CA, and that CA's PEM file."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    handler = type("Handler", (_Recorder,), {"seen": []})
    for base in _serve(handler, context):
        yield base, pem


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_tls_is_verified_against_the_bundle_the_environment_names(
    tls_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """The CA named by SSL_CERT_FILE or REQUESTS_CA_BUNDLE is trusted; without it, refused."""
    base, pem = tls_server
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SSLError):
        _call(Urllib3HttpClient(timeout=5), base, "POST")
    monkeypatch.setenv(variable, str(pem))
    assert _call(Urllib3HttpClient(timeout=5), base, "POST")[0] == 201


def _proxy_that_notes_the_first_line() -> tuple[socket.socket, list[bytes], threading.Thread]:
    listener = socket.create_server(("127.0.0.1", 0))
    lines: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            lines.append(conn.makefile("rb").readline())
            conn.sendall(
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, lines, thread


def test_a_text_to_twilio_goes_through_the_https_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With HTTPS_PROXY set, a text for api.twilio.com asks that proxy to CONNECT, as the SDK would."""
    listener, lines, thread = _proxy_that_notes_the_first_line()
    with listener:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{listener.getsockname()[1]}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        transport = TwilioSmsTransport("AC" + "0" * 32, "token", max_retries=0, timeout=5)
        with pytest.raises(SmsSendError):  # the proxy refuses; its first line is the point
            transport.send_sms(OutboundSms("+16175550100", "+16175550123", "Hi"))
        thread.join(timeout=5)
        transport.close()
    assert [line.split(b" ")[:2] for line in lines] == [[b"CONNECT", b"api.twilio.com:443"]]


def test_a_host_named_in_no_proxy_is_reached_directly(
    recorder: tuple[str, list[Seen]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """NO_PROXY naming the host sends the request straight there, past a proxy that is down."""
    base, seen = recorder
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{dead}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert _call(Urllib3HttpClient(timeout=5), base, "POST")[0] == 201
    monkeypatch.setenv("NO_PROXY", "example.invalid")
    with pytest.raises(ProxyError):  # through the proxy, which is down
        _call(Urllib3HttpClient(timeout=5), base, "POST")
    assert len(seen) == 1


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(
    recorder: tuple[str, list[Seen]],
) -> None:
    """A CR/LF in a header value (header injection) raises instead of reaching the server."""
    base, seen = recorder
    with pytest.raises(ValueError, match="header"):
        Urllib3HttpClient(timeout=5).request(
            "GET", f"{base}/x", headers={"User-Agent": "twilio\r\nX-Injected: 1"}
        )
    assert seen == []
