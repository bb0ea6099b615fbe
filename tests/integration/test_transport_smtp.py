"""SmtpEmailTransport against a real aiosmtpd server on loopback."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from drip.errors import ConfigError, TransportError
from drip.testing.smtp_server import SmtpTestServer
from drip.transports.base import OutboundEmail
from drip.transports.smtp_email import SmtpEmailTransport

# aiosmtpd warns when AUTH is allowed without TLS; that is what these loopback tests do.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

SENDER = "Sam Lee <sam@acme.test>"
UNSUBSCRIBE = {
    "List-Unsubscribe": "<https://drip.test/unsubscribe/tok123>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}


def email(to: str = "dana@example.com", **overrides: str) -> OutboundEmail:
    fields = {"subject": "Homes you may like", "body": "Hi Dana,\nthree new listings."}
    fields.update(overrides)
    return OutboundEmail(SENDER, to, fields["subject"], fields["body"], UNSUBSCRIBE)


@pytest.fixture
def smtp() -> Iterator[SmtpTestServer]:
    with SmtpTestServer() as server:
        yield server


def test_plain_send_delivers_with_headers_and_returns_message_id(smtp: SmtpTestServer) -> None:
    """The message arrives with its parties, subject, body, unsubscribe headers and Message-ID."""
    transport = SmtpEmailTransport(smtp.url(), "bounces@acme.test")
    receipt = transport.send_email(email(subject="Maisons à vendre ✓", body="Olá Dana 🏡"))
    assert smtp.wait_for(1)
    [received] = smtp.messages
    message = received.message
    assert received.mail_from == "bounces@acme.test"
    assert received.rcpt_tos == ("dana@example.com",)
    assert received.authenticated is False
    assert message["From"] == SENDER
    assert message["To"] == "dana@example.com"
    assert message["Subject"] == "Maisons à vendre ✓"
    assert message["Message-ID"] == receipt.message_id
    assert receipt.message_id.startswith("<")
    assert receipt.message_id.endswith("@acme.test>")
    assert message["List-Unsubscribe"] == "<https://drip.test/unsubscribe/tok123>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Date"] is not None
    assert message.get_content().strip() == "Olá Dana 🏡"


def test_from_header_defaults_to_the_transport_sender(smtp: SmtpTestServer) -> None:
    """An email with an empty from_ carries the transport's from_addr in its From header."""
    transport = SmtpEmailTransport(smtp.url(), "Acme <news@acme.test>")
    transport.send_email(OutboundEmail("", "dana@example.com", "s", "b"))
    assert smtp.wait_for(1)
    assert smtp.messages[0].message["From"] == "Acme <news@acme.test>"


def test_login_on_a_server_that_requires_auth() -> None:
    """With credentials in the URL the transport logs in; wrong or missing ones are refused."""
    with SmtpTestServer(users={"drip@acme.test": "p@ss:w/rd"}) as smtp:
        good = SmtpEmailTransport(smtp.url("drip@acme.test", "p@ss:w/rd"), "sam@acme.test")
        good.send_email(email())
        assert smtp.wait_for(1)
        assert smtp.messages[0].authenticated is True

        with pytest.raises(TransportError) as wrong:
            SmtpEmailTransport(smtp.url("drip@acme.test", "nope"), "sam@acme.test").send_email(
                email()
            )
        assert wrong.value.code == 535
        assert wrong.value.retryable is False

        with pytest.raises(TransportError) as anonymous:
            SmtpEmailTransport(smtp.url(), "sam@acme.test").send_email(email())
        assert anonymous.value.code == 530
        assert anonymous.value.retryable is False
        assert len(smtp.messages) == 1


def test_refused_recipient_permanent_and_temporary(smtp: SmtpTestServer) -> None:
    """A 5xx RCPT refusal is not retryable, a 4xx one is, and neither message is delivered."""
    smtp.reject("gone@example.com", "550 5.1.1 No such user")
    smtp.reject("busy@example.com", "450 4.2.1 Mailbox busy, try later")
    transport = SmtpEmailTransport(smtp.url(), "sam@acme.test")
    with pytest.raises(TransportError) as permanent:
        transport.send_email(email(to="gone@example.com"))
    assert (permanent.value.code, permanent.value.retryable) == (550, False)
    with pytest.raises(TransportError) as temporary:
        transport.send_email(email(to="busy@example.com"))
    assert (temporary.value.code, temporary.value.retryable) == (450, True)
    transport.send_email(email())
    assert smtp.wait_for(1)
    assert [m.rcpt_tos for m in smtp.messages] == [("dana@example.com",)]


def test_unreachable_server_is_retryable() -> None:
    """Nothing listening means nothing was sent, so the error is retryable."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    transport = SmtpEmailTransport(f"smtp://127.0.0.1:{port}", "sam@acme.test", timeout=2)
    with pytest.raises(TransportError, match="unreachable") as info:
        transport.send_email(email())
    assert info.value.retryable is True


def test_header_injection_is_refused(smtp: SmtpTestServer) -> None:
    """A header value with a line break is refused before anything is sent."""
    transport = SmtpEmailTransport(smtp.url(), "sam@acme.test")
    with pytest.raises(TransportError, match="cannot be built") as info:
        transport.send_email(email(subject="Hi\r\nBcc: everyone@example.com"))
    assert info.value.retryable is False
    assert smtp.messages == []


@pytest.mark.parametrize(
    "url",
    ["http://host:25", "smtp://", "smtp://host:notaport", "mailto:someone@example.com"],
)
def test_bad_urls_are_config_errors(url: str) -> None:
    """A URL that is not smtp, smtp+starttls or smtps with a host and port is refused early."""
    with pytest.raises(ConfigError):
        SmtpEmailTransport(url, "sam@acme.test")


def test_default_ports_follow_the_scheme() -> None:
    """Without a port, smtp uses 25, smtp+starttls 587 and smtps 465."""
    ports = [
        SmtpEmailTransport(f"{scheme}://mail.acme.test", "sam@acme.test").port
        for scheme in ("smtp", "smtp+starttls", "smtps")
    ]
    assert ports == [25, 587, 465]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_starttls_with_login(certificate: tuple[Path, Path]) -> None:
    """smtp+starttls upgrades the connection, verifies the server, then logs in and sends."""
    cert, key = certificate
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    with SmtpTestServer(users={"drip": "secret"}, tls_context=server_ctx) as smtp:
        url = smtp.url("drip", "secret", scheme="smtp+starttls")
        transport = SmtpEmailTransport(url, "sam@acme.test", ssl_context=client_ctx)
        transport.send_email(email())
        assert smtp.wait_for(1)
        assert smtp.messages[0].authenticated is True

        untrusting = SmtpEmailTransport(
            url, "sam@acme.test", ssl_context=ssl.create_default_context()
        )
        with pytest.raises(TransportError, match="TLS") as info:
            untrusting.send_email(email())
        assert info.value.retryable is False
        assert len(smtp.messages) == 1
