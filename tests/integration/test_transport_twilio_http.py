"""The lean HttpClient sends what the SDK's stock requests client sends, and fails alike."""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from twilio.http.http_client import TwilioHttpClient
from urllib3.exceptions import NewConnectionError

from drip.errors import ConfigError
from drip.transports.twilio_http import LeanHttpClient, form_encode

Seen = tuple[str, str, str, str | None, str | None]


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[Seen]

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
        payload = b'{"sid": "SM1", "status": "queued", "note": "caf\xc3\xa9"}'
        self.send_response(201)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer  # noqa: N815 - http.server dispatches on these names

    def log_message(self, *_: object) -> None:  # quiet
        return


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[Seen]]]:
    seen: list[Seen] = []
    handler = type("Handler", (_Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


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
def test_the_lean_client_sends_the_same_request_as_the_stock_one(
    recorder: tuple[str, list[Seen]], method: str
) -> None:
    """Method, path, query string, form body, basic auth and content type match requests'."""
    base, seen = recorder
    stock = _call(TwilioHttpClient(timeout=5), base, method)
    lean = _call(LeanHttpClient(timeout=5), base, method)
    assert lean == stock == (201, '{"sid": "SM1", "status": "queued", "note": "café"}')
    assert len(seen) == 2
    assert seen[1] == seen[0]
    assert "MediaUrl=a&MediaUrl=b" in seen[0][2] and "Unset" not in seen[0][2]


def test_the_base_url_replaces_scheme_and_host_and_keeps_its_path(
    recorder: tuple[str, list[Seen]],
) -> None:
    """With a base URL the request goes there, under its path, whatever host the SDK named."""
    base, seen = recorder
    client = LeanHttpClient(base + "/prefix/", timeout=5)
    status, _ = _call(client, "https://api.twilio.com", "GET")
    assert status == 201
    assert seen[0][1].startswith("/prefix/2010-04-01/Accounts/AC1/Messages.json?PageSize=50")


def test_a_refused_connection_is_a_requests_connection_error_from_new_connection_error() -> None:
    """Nothing listening: the error says nothing left, as requests reports it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(requests.ConnectionError) as info:
        _call(LeanHttpClient(timeout=2), f"http://127.0.0.1:{port}", "POST")
    assert isinstance(info.value.__cause__, NewConnectionError)


def test_a_silent_server_is_a_read_timeout_and_the_request_is_made_once() -> None:
    """A server that never answers: ReadTimeout (maybe sent), and no second connection."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        with pytest.raises(requests.ReadTimeout):
            _call(LeanHttpClient(timeout=0.3), f"http://127.0.0.1:{port}", "POST")
        first, _ = listener.accept()
        first.close()
        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):
            listener.accept()


def test_a_base_url_that_is_not_http_is_refused() -> None:
    """A base URL without http(s) and a host is a configuration error naming it."""
    with pytest.raises(ConfigError, match="ftp://x"):
        LeanHttpClient("ftp://x")


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


def test_a_recurring_text_value_encodes_the_same_every_time_and_apart_from_flags() -> None:
    """A text encoded before (from the cache) gives the same pairs; True stays "True", 1 "1"."""
    values: dict[str, object] = {"From": "+16175550100", "Body": "Hi & bye 100%", "N": 1, "F": True}
    first = form_encode(values)
    assert form_encode(values) == first == urlencode(list(values.items()))
    assert form_encode({"N": True, "F": 1}) == "N=True&F=1"


def _serve_raw(answers: list[bytes]) -> tuple[str, list[bytes], threading.Thread]:
    """A one-connection server answering each request with the next of ``answers`` verbatim.

    An answer of ``b""`` closes the connection instead; the requests seen are returned.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    seen: list[bytes] = []

    def run() -> None:
        with listener:
            for answer in answers:
                conn, _ = listener.accept()
                with conn:
                    data = conn.recv(65536)
                    seen.append(data)
                    if answer:
                        conn.sendall(answer)
                        conn.recv(65536)  # wait for the client to close or send again

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}", seen, thread


def test_a_chunked_gzip_answer_is_read_and_decoded() -> None:
    """Chunked transfer and gzip content encoding give the same text as a plain answer."""
    payload = gzip.compress(b'{"sid": "SM1"}')
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
    answer = (
        b"HTTP/1.1 201 Created\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n" + chunked
    )
    base, seen, thread = _serve_raw([answer])
    assert _call(LeanHttpClient(timeout=5), base, "POST") == (201, '{"sid": "SM1"}')
    thread.join(5)
    assert b"Accept-Encoding: gzip, deflate" in seen[0]


def test_a_connection_lost_before_the_answer_is_a_connection_error_that_may_have_sent() -> None:
    """Closed after the request arrived: ConnectionError without NewConnectionError (maybe sent)."""
    base, seen, thread = _serve_raw([b""])
    with pytest.raises(requests.ConnectionError) as info:
        _call(LeanHttpClient(timeout=5), base, "POST")
    thread.join(5)
    assert len(seen) == 1
    assert not isinstance(info.value.__cause__, NewConnectionError)


def test_a_kept_alive_connection_the_server_closed_is_replaced_before_use(
    recorder: tuple[str, list[Seen]],
) -> None:
    """An idle connection closed by the server is not written to: a new one carries the request."""
    base, seen = recorder
    client = LeanHttpClient(timeout=5)
    assert _call(client, base, "POST")[0] == 201
    for connections in client._idle.values():  # the server drops them while idle
        for conn in connections:
            conn.sock.shutdown(socket.SHUT_RDWR)
    assert _call(client, base, "POST")[0] == 201
    assert len(seen) == 2


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
    from drip.transports.base import OutboundSms
    from drip.transports.twilio_sms import TwilioSmsTransport

    listener, lines, thread = _proxy_that_notes_the_first_line()
    with listener:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{listener.getsockname()[1]}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        transport = TwilioSmsTransport("AC" + "0" * 32, "token", max_retries=0, timeout=5)
        with pytest.raises(Exception):  # noqa: B017, PT011 - the proxy refuses; its first line is the point
            transport.send_sms(OutboundSms("+16175550100", "+16175550123", "Hi"))
        thread.join(timeout=5)
        transport.close()
    assert [line.split(b" ")[:2] for line in lines] == [[b"CONNECT", b"api.twilio.com:443"]]


def test_twilio_named_in_no_proxy_is_reached_directly_by_the_lean_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """NO_PROXY naming Twilio's host keeps the lean client, which never reads proxy settings."""
    from drip.transports.twilio_sms import TwilioSmsTransport

    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "api.twilio.com")
    transport = TwilioSmsTransport("AC" + "0" * 32, "token")
    assert isinstance(transport._http_client, LeanHttpClient)
    transport.close()
