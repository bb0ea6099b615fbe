"""The fake Twilio server itself: Twilio-shaped answers, injection, callbacks, standalone mode."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
import requests
from net_support import free_port
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from drip.testing.fake_twilio import FakeTwilioProcess, FakeTwilioServer, num_segments
from drip.transports.base import ErrorClass, OutboundSms, SmsSendError
from drip.transports.twilio_urllib3 import Urllib3HttpClient

AGENT = "+16175550100"
DANA = "+16175550123"


@pytest.fixture
def server() -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer() as srv:
        yield srv


def messages_url(srv: FakeTwilioServer) -> str:
    return f"{srv.base_url}/2010-04-01/Accounts/{srv.account_sid}/Messages.json"


def test_wrong_credentials_get_twilio_shaped_401(server: FakeTwilioServer) -> None:
    """Bad basic auth is answered 401 with Twilio's JSON error body and nothing is recorded."""
    response = requests.post(
        messages_url(server),
        data={"From": AGENT, "To": DANA, "Body": "Hi"},
        auth=(server.account_sid, "nope"),
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    assert server.count == 0


def test_missing_parameters_get_twilio_codes(server: FakeTwilioServer) -> None:
    """A request without To, From or Body gets 400 with 21604, 21603 or 21602."""
    auth = (server.account_sid, server.auth_token)
    cases = [({"From": AGENT, "Body": "x"}, 21604), ({"To": DANA, "Body": "x"}, 21603)]
    cases.append(({"From": AGENT, "To": DANA}, 21602))
    for form, code in cases:
        response = requests.post(messages_url(server), data=form, auth=auth, timeout=5)
        assert response.status_code == 400
        assert response.json()["code"] == code
    assert server.accepted == 0
    assert [r.error_code for r in server.requests] == [21604, 21603, 21602]


def test_sdk_parses_the_created_and_fetched_message(server: FakeTwilioServer) -> None:
    """The real SDK parses the 201 resource and can fetch the same message back by sid."""
    client = Client(
        server.account_sid, server.auth_token, http_client=Urllib3HttpClient(server.base_url)
    )
    created = client.messages.create(from_=AGENT, to=DANA, body="ê" * 71)
    assert created.account_sid == server.account_sid
    assert created.to == DANA
    assert created.from_ == AGENT
    assert created.num_segments == "2"
    assert created.direction == "outbound-api"
    assert isinstance(created.date_created, datetime)
    fetched = client.messages(created.sid).fetch()
    assert fetched.sid == created.sid
    assert fetched.body == "ê" * 71


@pytest.mark.parametrize(
    ("body", "segments"),
    [("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3), ("[" * 80, 1), ("[" * 81, 2)],
)
def test_gsm_segment_counting(body: str, segments: int) -> None:
    """GSM-7 bodies split at 160/153 characters, extension characters counting twice."""
    assert num_segments(body) == segments


def test_unicode_segment_counting() -> None:
    """A body outside GSM-7 is UCS-2: 70 units in one segment, 67 per part beyond."""
    assert num_segments("🏡" * 35) == 1  # 70 UTF-16 units
    assert num_segments("🏡" * 36) == 2


def test_limited_failure_then_reset(server: FakeTwilioServer) -> None:
    """A failure for one time refuses once; reset clears requests, counts and failures."""
    transport = server.transport(sleep=lambda _: None, max_retries=0)
    server.fail(DANA, code=21612, status=400, times=1)
    with pytest.raises(SmsSendError) as info:
        transport.send_sms(OutboundSms(AGENT, DANA, "Hi"))
    assert info.value.error_class is ErrorClass.UNDELIVERABLE
    transport.send_sms(OutboundSms(AGENT, DANA, "Hi"))
    assert (server.count, server.accepted) == (2, 1)
    server.fail(DANA)
    server.reset()
    assert (server.count, server.accepted, server.requests) == (0, 0, [])
    transport.send_sms(OutboundSms(AGENT, DANA, "Hi"))
    assert server.accepted == 1


def test_concurrent_sends_from_threads(server: FakeTwilioServer) -> None:
    """Eight threads sharing one transport get 400 distinct sids, all recorded."""
    transport = server.transport()
    with ThreadPoolExecutor(max_workers=8) as pool:
        sids = list(
            pool.map(lambda i: transport.send_sms(OutboundSms(AGENT, DANA, str(i))).sid, range(400))
        )
    assert len(set(sids)) == 400
    assert server.count == 400
    assert {r.sid for r in server.requests} == set(sids)


def test_an_arrival_is_stamped_when_the_request_line_is_read(server: FakeTwilioServer) -> None:
    """A request whose body trails its head by 0.5 s arrived with its head, not when handled."""
    body = urlencode({"From": AGENT, "To": DANA, "Body": "Hi"}).encode()
    auth = base64.b64encode(f"{server.account_sid}:{server.auth_token}".encode()).decode()
    head = (
        f"POST /2010-04-01/Accounts/{server.account_sid}/Messages.json HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(head + body[:5])
        sent = time.time()
        time.sleep(0.5)  # the server can handle the request only once the rest is there
        conn.sendall(body[5:])
        assert conn.recv(12) == b"HTTP/1.1 201"
    [arrival] = server.arrivals
    assert arrival.from_ == AGENT
    assert sent - 0.2 < arrival.at < sent + 0.25


def test_stop_closes_kept_alive_connections() -> None:
    """After stop, a client holding a kept-alive connection cannot send any more."""
    srv = FakeTwilioServer().start()
    transport = srv.transport(sleep=lambda _: None)
    transport.send_sms(OutboundSms(AGENT, DANA, "Hi"))
    srv.stop()
    with pytest.raises(SmsSendError, match="refused the connection"):
        transport.send_sms(OutboundSms(AGENT, DANA, "Hi again"))


class _Receiver:
    """A tiny webhook receiver that keeps each POST's URL, form and signature."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, list[tuple[str, str]], str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                form = parse_qsl(self.rfile.read(length).decode())
                host = self.headers["Host"]
                receiver.posts.append(
                    (f"http://{host}{self.path}", form, self.headers["X-Twilio-Signature"])
                )
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/twilio/status"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_status_callbacks_are_posted_and_signed() -> None:
    """With callbacks on, sending, sent, then delivered (or the set outcome) arrive signed."""
    receiver = _Receiver()
    other = "+16175550124"
    try:
        with FakeTwilioServer(send_status_callbacks=True) as srv:
            srv.set_delivery(other, "undelivered", error_code=30003)
            transport = srv.transport()
            first = transport.send_sms(OutboundSms(AGENT, DANA, "Hi", receiver.url))
            second = transport.send_sms(OutboundSms(AGENT, other, "Hi", receiver.url))
            transport.send_sms(OutboundSms(AGENT, DANA, "no callback"))
            assert srv.wait_for_callbacks(6)
            assert all(c.response_status == 204 for c in srv.callbacks)
            validator = RequestValidator(srv.auth_token)
    finally:
        receiver.close()
    assert len(receiver.posts) == 6
    seen = []
    for url, form, signature in receiver.posts:
        assert url == receiver.url
        assert validator.validate(url, dict(form), signature)
        assert not RequestValidator("another-token").validate(url, dict(form), signature)
        params = dict(form)
        seen.append((params["MessageSid"], params["MessageStatus"], params.get("ErrorCode")))
    assert seen == [
        (first.sid, "sending", None),
        (first.sid, "sent", None),
        (first.sid, "delivered", None),
        (second.sid, "sending", None),
        (second.sid, "sent", None),
        (second.sid, "undelivered", "30003"),
    ]


def test_standalone_process_serves_sdk_and_control_endpoints() -> None:
    """`python -m drip.testing.fake_twilio` serves the SDK, injects --fail, reports stats, exits."""
    port = free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "drip.testing.fake_twilio", "--port", str(port)),
            *("--fail", "+16175550199:21610", "--record"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in banner
        base = f"http://127.0.0.1:{port}"
        srv = FakeTwilioServer()  # only for its default credentials
        from drip.transports.twilio_sms import TwilioSmsTransport

        transport = TwilioSmsTransport(srv.account_sid, srv.auth_token, base_url=base)
        transport.send_sms(OutboundSms(AGENT, DANA, "Hi"))
        with pytest.raises(SmsSendError) as info:
            transport.send_sms(OutboundSms(AGENT, "+16175550199", "Hi"))
        assert info.value.error_class is ErrorClass.OPTED_OUT
        requests.post(f"{base}/_fake/fail", data={"to": DANA, "code": 21614}, timeout=5)
        with pytest.raises(SmsSendError):
            transport.send_sms(OutboundSms(AGENT, DANA, "Hi"))
        stats = requests.get(f"{base}/_fake/stats", timeout=5).json()
        assert (stats["count"], stats["accepted"], stats["unauthorized"]) == (3, 1, 0)
        rows = requests.get(f"{base}/_fake/requests", timeout=5).json()
        assert [row["error_code"] for row in rows] == [None, 21610, 21614]
        requests.post(f"{base}/_fake/reset", timeout=5)
        assert json.loads(requests.get(f"{base}/_fake/stats", timeout=5).text)["count"] == 0
        transport.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        if proc.stdout is not None:
            proc.stdout.close()


def test_a_fake_in_its_own_process_reports_its_arrivals_and_counts() -> None:
    """FakeTwilioProcess: the SDK's texts show in GET /_fake/arrivals and stats; reset forgets."""
    with FakeTwilioProcess("--fail", "+16175550199:21610") as fake:
        command = Path(f"/proc/{fake.pid}/cmdline").read_bytes().split(b"\0")
        assert command[1:3] == [b"-m", b"drip.testing.fake_twilio"]  # pid: the fake's process
        transport = fake.transport()
        before = time.time()
        ok = transport.send_sms(OutboundSms(AGENT, DANA, "Hi", None, 600))
        with pytest.raises(SmsSendError):
            transport.send_sms(OutboundSms(AGENT, "+16175550199", "Hi"))
        after = time.time()
        arrivals = fake.arrivals
        assert [(a.from_, a.to, a.validity, a.segments) for a in arrivals] == [
            (AGENT, DANA, 600, 1),
            (AGENT, "+16175550199", None, 1),
        ]
        assert [a.sid for a in arrivals] == [ok.sid, None]
        assert all(before <= a.at <= after for a in arrivals)
        assert (fake.count, fake.stats()["accepted"]) == (2, 1)
        fake.reset()
        assert (fake.count, fake.arrivals) == (0, [])
        transport.close()
    with pytest.raises(RuntimeError, match="not started"):
        _ = fake.pid


def _raw_create(srv: FakeTwilioServer, accept_encoding: str | None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    auth = base64.b64encode(f"{srv.account_sid}:{srv.auth_token}".encode()).decode()
    headers = {
        "Authorization": f"Basic {auth}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    if accept_encoding is not None:
        headers["Accept-Encoding"] = accept_encoding
    body = urlencode({"From": AGENT, "To": DANA, "Body": "Hi"})
    conn.request("POST", f"/2010-04-01/Accounts/{srv.account_sid}/Messages.json", body, headers)
    return conn.getresponse()


def test_answers_are_chunked_and_gzipped_when_the_server_is_told_to() -> None:
    """A chunked+gzip server frames the 201 in chunks, gzipped for a client accepting gzip."""
    with FakeTwilioServer(chunked=True, gzip=True) as srv:
        answer = _raw_create(srv, "gzip, deflate")
        assert answer.status == 201
        assert answer.getheader("Transfer-Encoding") == "chunked"
        assert answer.getheader("Content-Length") is None
        assert answer.getheader("Content-Encoding") == "gzip"
        assert json.loads(gzip.decompress(answer.read()))["to"] == DANA
        plain = _raw_create(srv, None)  # no Accept-Encoding: no gzip, still chunked
        assert plain.getheader("Content-Encoding") is None
        assert plain.getheader("Transfer-Encoding") == "chunked"
        assert json.loads(plain.read())["to"] == DANA
        refused = _raw_create(srv, "gzip;q=0")
        assert refused.getheader("Content-Encoding") is None


def test_a_default_server_answers_with_a_content_length() -> None:
    """Without the switches an answer has a Content-Length and is not compressed."""
    with FakeTwilioServer() as srv:
        answer = _raw_create(srv, "gzip")
        body = answer.read()
        assert answer.getheader("Content-Length") == str(len(body))
        assert answer.getheader("Content-Encoding") is None
        assert answer.getheader("Transfer-Encoding") is None


@pytest.mark.parametrize(("chunked", "gzipped"), [(True, False), (False, True), (True, True)])
def test_drips_client_lists_many_messages_from_a_chunked_or_gzipped_answer(
    chunked: bool, gzipped: bool
) -> None:
    """The transport's Messages list reads a page of many chunks or gzip as the plain one."""
    with FakeTwilioServer(chunked=chunked, gzip=gzipped) as srv:
        transport = srv.transport(max_retries=0)
        since = datetime.now(UTC) - timedelta(minutes=1)
        sids = {transport.send_sms(OutboundSms(AGENT, DANA, f"n{i}")).sid for i in range(30)}
        found = transport.find_messages(to=DANA, from_=AGENT, since=since)
        transport.close()
    assert {m.sid for m in found} == sids
    assert sorted(m.body for m in found) == sorted(f"n{i}" for i in range(30))
