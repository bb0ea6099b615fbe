"""TwilioSmsTransport through the real twilio SDK against the local fake Twilio server."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest
from twilio.base.exceptions import TwilioRestException

from drip.errors import ConfigError
from drip.testing.fake_twilio import FakeTwilioServer
from drip.transports.base import ErrorClass, OutboundSms, SmsSendError
from drip.transports.twilio_sms import TwilioSmsTransport

AGENT = "+16175550100"
DANA = "+16175550123"


#: How the fake server frames its answers: every test here runs against each.
FRAMINGS = {
    "content-length": {},
    "chunked": {"chunked": True},
    "gzip": {"gzip": True},
    "chunked-gzip": {"chunked": True, "gzip": True},
}


@pytest.fixture(params=list(FRAMINGS))
def server(request: pytest.FixtureRequest) -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer(**FRAMINGS[request.param]) as srv:
        yield srv


class Sleeps:
    """Records the waits the transport asks for instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def make(server: FakeTwilioServer, sleeps: Sleeps, max_retries: int = 3) -> TwilioSmsTransport:
    return TwilioSmsTransport(
        server.account_sid,
        server.auth_token,
        base_url=server.base_url,
        max_retries=max_retries,
        backoff=float,  # retry n waits n seconds
        sleep=sleeps,
    )


def test_successful_send_returns_the_server_sid_and_the_server_saw_the_fields(
    server: FakeTwilioServer,
) -> None:
    """A send returns the sid the server issued, and the server got From, To, Body, callback."""
    transport = make(server, Sleeps())
    receipt = transport.send_sms(
        OutboundSms(AGENT, DANA, "Hi Dana — it's Sam 🏡", "https://drip.test/twilio/status")
    )
    assert re.fullmatch(r"SM[0-9a-f]{32}", receipt.sid)
    assert receipt.status == "queued"
    [request] = server.requests
    assert request.sid == receipt.sid
    assert request.status == 201
    assert (request.from_, request.to, request.body) == (AGENT, DANA, "Hi Dana — it's Sam 🏡")
    assert request.status_callback == "https://drip.test/twilio/status"
    assert request.path == f"/2010-04-01/Accounts/{server.account_sid}/Messages.json"


def test_no_status_callback_is_sent_when_none_is_given(server: FakeTwilioServer) -> None:
    """A text without a callback URL sends no StatusCallback parameter at all."""
    make(server, Sleeps()).send_sms(OutboundSms(AGENT, DANA, "Hi"))
    assert server.requests[0].status_callback is None
    assert "StatusCallback" not in dict(server.requests[0].params)


def test_connections_are_reused(server: FakeTwilioServer) -> None:
    """Many sends through one transport use one kept-alive connection, not one each."""
    transport = make(server, Sleeps())
    for i in range(20):
        transport.send_sms(OutboundSms(AGENT, DANA, f"n{i}"))
    assert server.count == 20
    assert server.connections_opened == 1


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (21610, ErrorClass.OPTED_OUT),
        (21211, ErrorClass.UNDELIVERABLE),
        (21612, ErrorClass.UNDELIVERABLE),
        (21614, ErrorClass.UNDELIVERABLE),
        (21635, ErrorClass.UNDELIVERABLE),
        (30007, ErrorClass.FAILED),
        (21617, ErrorClass.FAILED),
    ],
)
def test_refusals_are_classified_and_not_retried(
    server: FakeTwilioServer, code: int, expected: ErrorClass
) -> None:
    """A 400 refusal raises SmsSendError with its class and code after exactly one request."""
    server.fail(DANA, code=code, status=400)
    sleeps = Sleeps()
    with pytest.raises(SmsSendError) as info:
        make(server, sleeps).send_sms(OutboundSms(AGENT, DANA, "Hi"))
    error = info.value
    assert error.error_class is expected
    assert error.code == code
    assert error.status == 400
    assert error.retryable is False
    assert isinstance(error.__cause__, TwilioRestException)
    assert server.count == 1
    assert sleeps.calls == []


def test_too_many_requests_is_retried_then_succeeds(server: FakeTwilioServer) -> None:
    """Two 429/20429 answers are retried with the backoff, and the third try is accepted."""
    server.fail(DANA, code=20429, status=429, times=2)
    sleeps = Sleeps()
    receipt = make(server, sleeps).send_sms(OutboundSms(AGENT, DANA, "Hi"))
    assert [r.status for r in server.requests] == [429, 429, 201]
    assert server.requests[-1].sid == receipt.sid
    assert sleeps.calls == [1.0, 2.0]


def test_server_errors_are_unknown_and_never_retried(server: FakeTwilioServer) -> None:
    """A 503 may come from a gateway after Twilio accepted: one request, raised as unknown."""
    server.fail(DANA, code=20503, status=503)
    sleeps = Sleeps()
    with pytest.raises(SmsSendError) as info:
        make(server, sleeps, max_retries=2).send_sms(OutboundSms(AGENT, DANA, "Hi"))
    assert info.value.error_class is ErrorClass.UNKNOWN
    assert info.value.retryable is False
    assert info.value.status == 503
    assert server.count == 1
    assert sleeps.calls == []


def test_too_many_requests_are_retried_up_to_the_bound(server: FakeTwilioServer) -> None:
    """A persistent 429 is tried max_retries + 1 times and then raised as retryable."""
    server.fail(DANA, code=20429, status=429)
    sleeps = Sleeps()
    with pytest.raises(SmsSendError) as info:
        make(server, sleeps, max_retries=2).send_sms(OutboundSms(AGENT, DANA, "Hi"))
    assert info.value.error_class is ErrorClass.RETRYABLE
    assert server.count == 3
    assert sleeps.calls == [1.0, 2.0]


def test_zero_retries_means_one_request(server: FakeTwilioServer) -> None:
    """With max_retries=0 a retryable refusal is raised after the first request."""
    server.fail(DANA, code=20429, status=429)
    with pytest.raises(SmsSendError):
        make(server, Sleeps(), max_retries=0).send_sms(OutboundSms(AGENT, DANA, "Hi"))
    assert server.count == 1


def test_wrong_credentials_are_refused(server: FakeTwilioServer) -> None:
    """A wrong auth token gets Twilio's 401/20003, an auth error that is not retried."""
    transport = TwilioSmsTransport(
        server.account_sid, "wrong-token", base_url=server.base_url, sleep=Sleeps()
    )
    with pytest.raises(SmsSendError) as info:
        transport.send_sms(OutboundSms(AGENT, DANA, "Hi"))
    assert info.value.status == 401
    assert info.value.code == 20003
    assert info.value.error_class is ErrorClass.AUTH
    assert server.accepted == 0


def test_a_refused_connection_is_retried_and_stays_retryable() -> None:
    """Nothing listening on the port: nothing left, so retried, then raised as retryable."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps = Sleeps()
    transport = TwilioSmsTransport(
        "AC" + "1" * 32, "token", base_url=f"http://127.0.0.1:{port}", sleep=sleeps
    )
    with pytest.raises(SmsSendError, match="refused the connection") as info:
        transport.send_sms(OutboundSms(AGENT, DANA, "Hi"))
    assert info.value.code is None
    assert info.value.status is None
    assert info.value.error_class is ErrorClass.RETRYABLE
    assert len(sleeps.calls) == 3


def test_read_timeout_is_not_resent() -> None:
    """A server that accepts the request but never answers times out once and is not resent."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        sleeps = Sleeps()
        transport = TwilioSmsTransport(
            "AC" + "1" * 32,
            "token",
            base_url=f"http://127.0.0.1:{port}",
            sleep=sleeps,
            timeout=0.3,
        )
        with pytest.raises(SmsSendError) as info:
            transport.send_sms(OutboundSms(AGENT, DANA, "Hi"))
        assert info.value.error_class is ErrorClass.UNKNOWN
        assert info.value.retryable is False
        assert sleeps.calls == []
        first, _ = listener.accept()
        first.close()
        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):
            listener.accept()


def test_base_url_path_prefix_is_kept() -> None:
    """A base URL with a path sends requests under that path (e.g. behind a proxy prefix)."""
    with FakeTwilioServer() as srv:
        transport = TwilioSmsTransport(
            srv.account_sid, srv.auth_token, base_url=srv.base_url + "/prefix", sleep=Sleeps()
        )
        with pytest.raises(SmsSendError) as info:
            transport.send_sms(OutboundSms(AGENT, DANA, "Hi"))
        assert info.value.status == 404


@pytest.mark.parametrize("base_url", ["ftp://127.0.0.1:1", "127.0.0.1:8099", "http://"])
def test_bad_base_url_is_a_config_error(base_url: str) -> None:
    """A base URL that is not http(s)://host is refused when the transport is built."""
    with pytest.raises(ConfigError):
        TwilioSmsTransport("AC" + "1" * 32, "token", base_url=base_url)


def test_missing_credentials_are_a_config_error() -> None:
    """An empty account sid or token is refused when the transport is built."""
    with pytest.raises(ConfigError, match="TWILIO_AUTH_TOKEN"):
        TwilioSmsTransport("AC" + "1" * 32, "")
