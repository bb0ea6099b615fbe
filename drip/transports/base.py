"""What a transport is: the values that go out, the receipts that come back, the errors.

A transport is the one place where a message leaves drip. Every transport
implements :class:`SmsTransport`, :class:`EmailTransport` or both, and reports
a refused or failed send as a :class:`drip.errors.TransportError` (for SMS the
subclass :class:`SmsSendError`, which also says *how* it failed, see
:func:`classify_twilio_error`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from drip.errors import TransportError

__all__ = [
    "EmailAuthError",
    "EmailMaybeSentError",
    "EmailReceipt",
    "EmailTransport",
    "ErrorClass",
    "FrozenHeaders",
    "MessageLister",
    "OutboundEmail",
    "OutboundSms",
    "ProviderError",
    "ProviderMessage",
    "SmsReceipt",
    "SmsSendError",
    "SmsTransport",
    "classify_twilio_error",
    "error_class_of",
    "sms_send_error",
]


@dataclass(frozen=True)
class OutboundSms:
    """One text to hand to the provider, exactly as it will be sent.

    ``validity_seconds``: how long the provider may hold it in its queue
    before dropping it (Twilio ``ValidityPeriod``); None: its default.
    """

    from_: str
    to: str
    body: str
    status_callback: str | None = None
    validity_seconds: int | None = None


@dataclass(frozen=True)
class SmsReceipt:
    """The provider accepted the text: its id (``SM...`` for Twilio) and first status."""

    sid: str
    status: str


@dataclass(frozen=True)
class ProviderMessage:
    """A message as the provider lists it (Twilio's Messages list), for reconciliation."""

    sid: str
    to: str
    from_: str
    body: str
    status: str
    created_at: datetime
    error_code: int | None = None


@runtime_checkable
class MessageLister(Protocol):
    def find_messages(self, *, to: str, from_: str, since: datetime) -> list[ProviderMessage]:
        """Messages from ``from_`` to ``to`` created since ``since`` (newest first)."""
        ...


class SmsTransport(Protocol):
    def send_sms(self, msg: OutboundSms) -> SmsReceipt:
        """Hand one text to the provider; raise :class:`SmsSendError` if it is not accepted."""
        ...


class FrozenHeaders(Mapping[str, str]):
    """An immutable, hashable, ordered mapping of header names to values."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        self._items: tuple[tuple[str, str], ...] = tuple((items or {}).items())

    def __getitem__(self, key: str) -> str:
        for name, value in self._items:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._items) == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenHeaders({dict(self._items)!r})"


@dataclass(frozen=True)
class OutboundEmail:
    """One email to send; ``headers`` are extra headers (e.g. ``List-Unsubscribe``).

    ``headers`` accepts any mapping and is stored as a :class:`FrozenHeaders`, so
    the value stays immutable and hashable.
    """

    from_: str
    to: str
    subject: str
    body: str
    headers: Mapping[str, str] = field(default_factory=FrozenHeaders)

    def __post_init__(self) -> None:
        if not isinstance(self.headers, FrozenHeaders):
            object.__setattr__(self, "headers", FrozenHeaders(self.headers))


@dataclass(frozen=True)
class EmailReceipt:
    """The mail server accepted the email; the ``Message-ID`` header it carries."""

    message_id: str


class EmailTransport(Protocol):
    def send_email(self, msg: OutboundEmail) -> EmailReceipt:
        """Hand one email to the mail server; raise :class:`TransportError` if refused."""
        ...


class ErrorClass(StrEnum):
    """How a provider refusal should be handled by the caller.

    - ``retryable``: the provider did not accept the message and asks to try
      later (HTTP 429, Twilio 20429), or the connection was refused before
      anything was sent; trying again cannot duplicate it. Once the
      transport's own retries are spent, the send is deferred
      (``provider_unavailable``), never failed.
    - ``unknown``: the request left and no clear answer came back (a 5xx from a
      gateway, a timeout, a connection lost mid-request): the provider may have
      accepted it. Never retried, never failed: recorded ``unknown`` and
      settled by ``drip reconcile``.
    - ``auth``: the provider refused our credentials (Twilio 20003 / HTTP 401,
      an SMTP login refused). Nothing is sent through that provider until it
      works again (a circuit), and the sends stay pending.
    - ``opted_out``: the recipient unsubscribed at the carrier (Twilio 21610);
      consent is revoked for every sender.
    - ``undeliverable``: the number cannot receive texts (invalid, unreachable,
      not mobile, landline).
    - ``failed``: any other refusal of this message by the provider.
    """

    RETRYABLE = "retryable"
    UNKNOWN = "unknown"
    AUTH = "auth"
    OPTED_OUT = "opted_out"
    UNDELIVERABLE = "undeliverable"
    FAILED = "failed"


TWILIO_OPTED_OUT = 21610
TWILIO_TOO_MANY_REQUESTS = 20429
TWILIO_AUTHENTICATE = 20003
TWILIO_UNDELIVERABLE = frozenset(
    {
        21211,  # invalid 'To' phone number
        21612,  # 'To' not currently reachable via SMS
        21614,  # 'To' is not a mobile number
        21635,  # 'To' is a landline
    }
)


def classify_twilio_error(status: int, code: int | None) -> ErrorClass:
    """Classify a Twilio refusal from its HTTP status and Twilio error code.

    The error code is the more specific signal, so the opt-out and
    undeliverable codes win over the status; then 429/20429 is retryable
    (Twilio documents it as not accepted), 401/20003 is an authentication
    failure, and a 5xx is ``unknown``: a gateway may answer 500 or 502 after
    Twilio accepted the message, so it must not be sent again. Everything
    else failed.
    """
    if code == TWILIO_OPTED_OUT:
        return ErrorClass.OPTED_OUT
    if code in TWILIO_UNDELIVERABLE:
        return ErrorClass.UNDELIVERABLE
    if status == 429 or code == TWILIO_TOO_MANY_REQUESTS:
        return ErrorClass.RETRYABLE
    if status == 401 or code == TWILIO_AUTHENTICATE:
        return ErrorClass.AUTH
    if 500 <= status <= 599:
        return ErrorClass.UNKNOWN
    return ErrorClass.FAILED


class ProviderError(TransportError):
    """A provider's refusal or silence, classified: ``error_class``, ``code``, ``status``."""

    def __init__(
        self,
        message: str,
        *,
        error_class: ErrorClass,
        code: int | None = None,
        status: int | None = None,
    ) -> None:
        self.error_class = error_class
        self.status = status
        super().__init__(message, code=code, retryable=error_class is ErrorClass.RETRYABLE)


class SmsSendError(ProviderError):
    """A text was not accepted by the provider.

    ``error_class`` says how to react (see :class:`ErrorClass`), ``code`` is the
    provider's error code (None when the provider was unreachable) and
    ``status`` the HTTP status (None likewise). ``retryable`` is true exactly
    for :attr:`ErrorClass.RETRYABLE`.
    """


class EmailAuthError(TransportError):
    """The mail server refused drip's login: a circuit opens, nothing is sent through it."""


class EmailMaybeSentError(TransportError):
    """The connection was lost during the mail transaction: the server may have accepted it."""


def error_class_of(exc: TransportError) -> ErrorClass:
    """How to handle any transport error, SMS or email (see :class:`ErrorClass`)."""
    if isinstance(exc, SmsSendError):
        return exc.error_class
    if isinstance(exc, EmailAuthError):
        return ErrorClass.AUTH
    if isinstance(exc, EmailMaybeSentError):
        return ErrorClass.UNKNOWN
    if exc.retryable:
        return ErrorClass.RETRYABLE
    return ErrorClass.FAILED


def sms_send_error(status: int, code: int | None, detail: str, to: str) -> SmsSendError:
    """Build the :class:`SmsSendError` for a provider refusal (shared by every SMS transport)."""
    error_class = classify_twilio_error(status, code)
    shown = f"error {code}" if code is not None else "no error code"
    return SmsSendError(
        f"SMS to {to} refused ({error_class}): HTTP {status}, {shown}: {detail}",
        error_class=error_class,
        code=code,
        status=status,
    )
