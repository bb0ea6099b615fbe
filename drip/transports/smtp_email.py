"""Email through an SMTP server with the standard library.

``url`` says how to reach the server:

- ``smtp://[user:password@]host[:port]`` plain SMTP (port 25 by default),
- ``smtp+starttls://[user:password@]host[:port]`` upgraded with STARTTLS (port 587),
- ``smtps://[user:password@]host[:port]`` TLS from the first byte (port 465).

User and password are percent-decoded; when given, the transport logs in.
Each email opens one connection, sends, and quits: drip's email volume is
small and a fresh connection cannot go stale.

Errors become :class:`drip.errors.TransportError` with the SMTP reply code:
a 4xx reply (temporary) is retryable, a 5xx reply is not. A failure to
connect is retryable (nothing was sent: the send is deferred, not failed); a
refused login is :class:`EmailAuthError` (a circuit opens); a TLS failure
(e.g. a certificate that does not verify) is not retryable; a connection
lost during the transaction is :class:`EmailMaybeSentError` (the server may
have accepted the message: ``unknown``, never resent).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from urllib.parse import unquote, urlsplit

from drip.clock import Clock, SystemClock
from drip.errors import ConfigError, TransportError
from drip.transports.base import (
    EmailAuthError,
    EmailMaybeSentError,
    EmailReceipt,
    OutboundEmail,
)

__all__ = ["SmtpEmailTransport"]

_DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
# Headers the transport writes itself; the same names in OutboundEmail.headers replace them.
_OWN_HEADERS = ("From", "To", "Subject", "Date", "Message-ID")


class SmtpEmailTransport:
    """Implements :class:`EmailTransport` over SMTP.

    ``from_addr`` is the envelope sender (``MAIL FROM``, where bounces go) and
    the ``From`` header when the message leaves ``from_`` empty. ``ssl_context``
    verifies the server for STARTTLS and ``smtps`` (default: the system's
    trusted CAs). ``clock`` gives the ``Date`` header.
    """

    def __init__(
        self,
        url: str,
        from_addr: str,
        *,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        clock: Clock | None = None,
    ) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ConfigError(
                f"SMTP URL scheme must be smtp, smtp+starttls or smtps, not {parts.scheme!r}"
            )
        if not parts.hostname:
            raise ConfigError(f"SMTP URL has no host: {_redact(url)}")
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"SMTP URL has a bad port: {_redact(url)}") from exc
        if not from_addr or "@" not in parseaddr(from_addr)[1]:
            raise ConfigError(f"the email sender address is not an address: {from_addr!r}")
        self._scheme = scheme
        self._host = parts.hostname
        self._port = port if port is not None else _DEFAULT_PORTS[scheme]
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else ""
        self._from_addr = from_addr
        self._timeout = timeout
        self._ssl_context = ssl_context
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._msgid_domain = parseaddr(from_addr)[1].rpartition("@")[2] or "drip.local"

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    def send_email(self, msg: OutboundEmail) -> EmailReceipt:
        message, message_id = self._build(msg)
        smtp = self._connect()
        try:
            smtp.send_message(message, from_addr=self._from_addr, to_addrs=[msg.to])
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            temporary = bool(codes) and all(400 <= code < 500 for code in codes)
            raise TransportError(
                f"email to {msg.to} refused by the SMTP server: {exc.recipients}",
                code=codes[0] if codes else None,
                retryable=temporary,
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise _reply_error(f"email to {msg.to} not accepted", exc) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise EmailMaybeSentError(
                f"email to {msg.to}: connection to {self._host}:{self._port} lost during"
                f" the transaction ({type(exc).__name__}: {exc}); it may have been accepted",
                retryable=False,
            ) from exc
        finally:
            _quit(smtp)
        return EmailReceipt(message_id=message_id)

    def _build(self, msg: OutboundEmail) -> tuple[EmailMessage, str]:
        message_id = make_msgid(domain=self._msgid_domain)
        message = EmailMessage()
        try:
            message["From"] = msg.from_ or self._from_addr
            message["To"] = msg.to
            message["Subject"] = msg.subject
            message["Date"] = format_datetime(self._clock.now())
            message["Message-ID"] = message_id
            for name, value in msg.headers.items():
                if name.lower() in (own.lower() for own in _OWN_HEADERS):
                    del message[name]
                message[name] = value
            message.set_content(msg.body)
        except (ValueError, TypeError) as exc:
            raise TransportError(
                f"email to {msg.to} cannot be built: {exc}", retryable=False
            ) from exc
        return message, str(message["Message-ID"])

    def _connect(self) -> smtplib.SMTP:
        """Open, secure and authenticate a connection; nothing is sent yet, so errors retry."""
        smtp: smtplib.SMTP | None = None
        where = f"{self._host}:{self._port}"
        try:
            if self._scheme == "smtps":
                smtp = smtplib.SMTP_SSL(
                    self._host, self._port, timeout=self._timeout, context=self._tls_context()
                )
            else:
                smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
                if self._scheme == "smtp+starttls":
                    smtp.starttls(context=self._tls_context())
            if self._user is not None:
                smtp.login(self._user, self._password)
        except smtplib.SMTPAuthenticationError as exc:
            _quit(smtp)
            raise EmailAuthError(
                f"SMTP server {where} refused the login of {self._user!r}: {exc.smtp_code}",
                code=exc.smtp_code,
                retryable=False,
            ) from exc
        except smtplib.SMTPResponseException as exc:
            _quit(smtp)
            raise _reply_error(f"SMTP server {where} refused the session", exc) from exc
        except smtplib.SMTPNotSupportedError as exc:
            _quit(smtp)
            raise TransportError(
                f"SMTP server {where} does not support what the URL asks for: {exc}",
                retryable=False,
            ) from exc
        except ssl.SSLError as exc:
            _quit(smtp)
            raise TransportError(
                f"TLS with SMTP server {where} failed ({type(exc).__name__}: {exc})",
                retryable=False,
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            _quit(smtp)
            raise TransportError(
                f"SMTP server {where} unreachable ({type(exc).__name__}: {exc})",
                retryable=True,
            ) from exc
        return smtp

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context


#: SMTP replies that mean drip's login is missing or refused (RFC 4954, section 6): a circuit opens.
_AUTH_REPLIES = frozenset({530, 534, 535, 538})


def _reply_error(what: str, exc: smtplib.SMTPResponseException) -> TransportError:
    code = exc.smtp_code
    error = exc.smtp_error
    text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
    if code in _AUTH_REPLIES:
        return EmailAuthError(f"{what}: {code} {text}", code=code, retryable=False)
    return TransportError(f"{what}: {code} {text}", code=code, retryable=400 <= code < 500)


def _quit(smtp: smtplib.SMTP | None) -> None:
    if smtp is None:
        return
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
