"""Texts through Twilio's Messages API with the official SDK.

One :class:`twilio.rest.Client` is built per transport and reused, on the
SDK's documented extension point for HTTP, a custom ``HttpClient``:
:class:`drip.transports.twilio_urllib3.Urllib3HttpClient`, urllib3's
connection pools (kept-alive connections, TLS from the environment's CA
bundle, the environment's proxy). With ``base_url`` (tests, benchmarks, demos)
every request the SDK makes goes to that URL instead of
``https://api.twilio.com``: the client rewrites the scheme and host of each URL
and leaves path, auth, headers and body exactly as the SDK built them.

Retries (see docs/reliability.md): only what Twilio documents as *not accepted* is retried,
at most ``max_retries`` times with ``backoff`` between tries: HTTP 429 /
code 20429, and a connection refused before anything was sent (the TCP
connection could not even be opened). Once the retries are spent the error
stays ``retryable`` and the caller defers the send (``provider_unavailable``).

Never retried: a 5xx answer (a gateway may answer 500 after Twilio accepted
the message) and a timeout or connection lost after the request left: they
raise :class:`SmsSendError` with :attr:`ErrorClass.UNKNOWN` (maybe sent).
401 / 20003 is :attr:`ErrorClass.AUTH` (wrong credentials: a circuit opens).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.rest import Client
from urllib3.exceptions import ConnectTimeoutError, HTTPError, ProxyError

from drip.errors import ConfigError, TransportError
from drip.transports.base import (
    ErrorClass,
    OutboundSms,
    ProviderMessage,
    SmsReceipt,
    SmsSendError,
    sms_send_error,
)
from drip.transports.twilio_urllib3 import Urllib3HttpClient

__all__ = ["TwilioSmsTransport", "default_backoff"]

DEFAULT_TIMEOUT = 15.0
POOL_SIZE = 32


def default_backoff(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): 0.5 s doubling, capped at 8 s,
    with jitter (50-100 %) so that many workers do not retry in step."""
    base: float = min(0.5 * 2.0 ** (attempt - 1), 8.0)
    return base * random.uniform(0.5, 1.0)


class TwilioSmsTransport:
    """Implements :class:`SmsTransport` with Twilio.

    ``max_retries`` bounds the retries of a retryable refusal (so at most
    ``max_retries + 1`` requests per text); ``backoff(n)`` gives the seconds
    before retry ``n``; ``sleep`` is injectable so that tests never wait.
    ``timeout`` bounds connect and read of each request.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        base_url: str | None = None,
        max_retries: int = 3,
        backoff: Callable[[int], float] = default_backoff,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> None:
        if not account_sid or not auth_token:
            raise ConfigError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must both be set")
        if max_retries < 0:
            raise ConfigError(f"max_retries must be 0 or more, not {max_retries}")
        self._http_client = Urllib3HttpClient(base_url, timeout=timeout, maxsize=POOL_SIZE)
        self._client = Client(account_sid, auth_token, http_client=self._http_client)
        self._messages = self._client.messages
        self._max_retries = max_retries
        self._backoff = backoff
        self._sleep = sleep
        self.base_url = base_url

    def send_sms(self, msg: OutboundSms) -> SmsReceipt:
        retries = 0
        while True:
            try:
                return self._send_once(msg)
            except SmsSendError as exc:
                if exc.error_class is not ErrorClass.RETRYABLE or retries >= self._max_retries:
                    if retries:
                        exc.add_note(f"gave up after {retries + 1} attempts")
                    raise
                retries += 1
                self._sleep(self._backoff(retries))

    def find_messages(self, *, to: str, from_: str, since: datetime) -> list[ProviderMessage]:
        """Twilio's Messages list from ``from_`` to ``to``, sent since the day of ``since``.

        The ``DateSent>`` filter is by day at Twilio, so the list is then cut at
        ``since`` by each message's creation time. A message not handed to the
        carrier yet has no ``date_sent``: a second list without the date filter
        (the newest page only) finds those. Raises :class:`TransportError` when
        Twilio cannot be asked.
        """
        day = datetime(since.year, since.month, since.day, tzinfo=UTC)
        seen: dict[str, ProviderMessage] = {}
        try:
            listed = [
                *self._messages.list(to=to, from_=from_, date_sent_after=day, page_size=200),
                *self._messages.list(to=to, from_=from_, limit=50, page_size=50),
            ]
        except (TwilioRestException, TwilioServiceException, TwilioException) as exc:
            raise TransportError(f"Twilio's Messages list failed: {exc}") from exc
        except HTTPError as exc:
            raise TransportError(
                f"Twilio's Messages list unreachable ({type(exc).__name__}: {exc})"
            ) from exc
        for item in listed:
            created = item.date_created
            if item.sid is None or created is None or created < since:
                continue
            seen[str(item.sid)] = ProviderMessage(
                sid=str(item.sid),
                to=str(item.to),
                from_=str(item.from_),
                body=str(item.body or ""),
                status=str(item.status or "queued"),
                created_at=created,
                error_code=int(item.error_code) if item.error_code else None,
            )
        return sorted(seen.values(), key=lambda m: m.created_at, reverse=True)

    def account_status(self) -> str:
        """The account's status at Twilio (``active``...): one authenticated GET of the account.

        Raises :class:`SmsSendError` when Twilio refuses the credentials (20003) or
        cannot be reached, with its code.
        """
        try:
            account = self._client.api.v2010.accounts(self._client.username).fetch()
        except (TwilioRestException, TwilioServiceException) as exc:
            status = int(exc.status)
            code = _provider_code(exc.code, status)
            detail = str(getattr(exc, "msg", None) or getattr(exc, "title", "") or exc)
            raise SmsSendError(
                f"Twilio refused the account request (HTTP {status}, {code}): {detail}",
                error_class=ErrorClass.AUTH if status in (401, 403) else ErrorClass.FAILED,
                code=code,
            ) from exc
        except (HTTPError, TwilioException, ValueError) as exc:
            raise SmsSendError(
                f"Twilio could not be reached ({type(exc).__name__}: {exc})",
                error_class=ErrorClass.RETRYABLE,
            ) from exc
        return str(account.status or "unknown")

    def close(self) -> None:
        """Close the pooled connections."""
        self._http_client.close()

    def _send_once(self, msg: OutboundSms) -> SmsReceipt:
        kwargs: dict[str, Any] = {"from_": msg.from_, "to": msg.to, "body": msg.body}
        if msg.status_callback is not None:
            kwargs["status_callback"] = msg.status_callback
        if msg.validity_seconds is not None:
            kwargs["validity_period"] = msg.validity_seconds
        try:
            message = self._messages.create(**kwargs)
        except (TwilioRestException, TwilioServiceException) as exc:
            status = int(exc.status)
            code = _provider_code(exc.code, status)
            detail = str(getattr(exc, "msg", None) or getattr(exc, "title", "") or exc)
            raise sms_send_error(status, code, detail, msg.to) from exc
        except HTTPError as exc:
            if _refused_before_sending(exc):
                raise SmsSendError(
                    f"SMS to {msg.to} not sent: Twilio refused the connection"
                    f" ({type(exc).__name__}); nothing left, so it may be tried again",
                    error_class=ErrorClass.RETRYABLE,
                ) from exc
            raise SmsSendError(
                f"SMS to {msg.to}: no answer from Twilio after the request left"
                f" ({type(exc).__name__}: {exc}); it may or may not have been accepted,"
                " so it is not resent",
                error_class=ErrorClass.UNKNOWN,
            ) from exc
        except (TwilioException, ValueError) as exc:
            raise SmsSendError(
                f"SMS to {msg.to}: unusable answer from Twilio ({type(exc).__name__}: {exc})",
                error_class=ErrorClass.FAILED,
            ) from exc
        sid = message.sid
        if not sid:
            raise SmsSendError(
                f"SMS to {msg.to}: Twilio answered without a message sid",
                error_class=ErrorClass.FAILED,
            )
        return SmsReceipt(sid=str(sid), status=str(message.status or "queued"))


def _refused_before_sending(exc: HTTPError) -> bool:
    """True when the connection itself could not be opened: no byte of the request left.

    urllib3 raises ``NewConnectionError`` for a refused connection (or a name
    that does not resolve) and ``ConnectTimeoutError``, its parent, for a
    connect timeout; through a proxy, a ``ProxyError`` caused by one of them.
    A read timeout or a connection lost mid-request is anything else.
    """
    if isinstance(exc, ProxyError):
        return isinstance(exc.original_error, ConnectTimeoutError)
    return isinstance(exc, ConnectTimeoutError)


def _provider_code(code: object, status: int) -> int | None:
    """Twilio's error code; the SDK puts the HTTP status there when the body was not JSON."""
    if isinstance(code, int) and not isinstance(code, bool) and code != status:
        return code
    return None
